"""The terminal front (`rewind rollback`, the break-glass path): numbered choices at the prompt,
Ctrl-C, people shown by name.
"""
