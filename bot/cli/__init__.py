"""`rewind` / `python -m bot`: the command line (serve, worker, rollback, status, list, check,
demo, export, deployed).

The top: may import anything.
"""
