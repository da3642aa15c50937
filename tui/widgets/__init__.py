"""The app's widgets: one package per place they show (training, generation, inspect, compare), and
text_source.py, which the views that read a text share."""
