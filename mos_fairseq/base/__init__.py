"""The base layer, below every other: error types (``errors``), atomic files (``files``), the
plugin's ``--user-dir`` (``user_dir``) and JSON tree models (``json_models``). It imports nothing
else of the package, so every layer may use it."""
