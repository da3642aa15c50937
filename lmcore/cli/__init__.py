"""The ``lmcore`` command line, one module per command group (corpora, models, train, generate, inspect,
export, bench); main.py (parser, ``main``), model_options.py, output.py and train_output.py serve them."""
