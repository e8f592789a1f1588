"""lotterylib: the mechanisms of the Sparse Tickets book, each written once.

Modules: ``data`` (datasets as tensors), ``models`` (population models), ``weightfn`` (the weight a
layer uses as a function of what it stores), ``masks`` and ``criteria`` (pruning), ``train`` (the
population training engine), ``lottery`` (IMP), ``cache`` (result cache), ``claims`` (the papers'
claims and their checks), ``plots`` and ``widgets``.
"""

__version__ = "0.1.0"
