"""The store: model_store.py (model folders, locks), checkpoint.py (meta.json), files.py (atomic writes,
safe reads), typed.py (dataclasses from untrusted JSON), safetensors_header.py (torch-free headers)."""
