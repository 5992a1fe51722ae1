"""The built-in layers, one module per family; each module lists its records in ``RECORDS``.
A new family is a new module here and one line below (or a plugin: see docs/plugins.md)."""

from . import activation, conv, norm, pool, reshape, tensor

BUILTIN_OPS = (*tensor.RECORDS, *conv.RECORDS, *norm.RECORDS, *activation.RECORDS,
               *pool.RECORDS, *reshape.RECORDS)
