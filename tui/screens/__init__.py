"""The app's screens: picker (the models), model (its tabs), new_model, compare, corpus, docs, dialogs."""
