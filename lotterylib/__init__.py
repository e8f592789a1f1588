"""lotterylib: the mechanisms of the Sparse Tickets book, each written once.

Core: ``data`` (datasets as tensors), ``models`` (population models, runs stacked on dim 0),
``weightfn`` (the weight a layer uses as a function of what it stores, with one straight-through
building block), ``masks`` and ``criteria`` (pruning), ``train`` (the population training engine),
``lottery`` (IMP), ``cache`` (result cache), ``provenance`` (which code, device and date made a
result), ``claims`` (the papers' claims and their checks), ``plots`` and ``widgets``.

Chapters' mechanisms: ``deconstruct`` (Zhou et al.: mask-0/mask-1 variants, supermasks), ``nettrim``
and ``toydata`` (Net-Trim, nested spirals), ``binary`` and ``bitpack`` (BinaryConnect … XNOR-Net, the
XNOR-popcount kernel), ``wiring`` (Discovering Neural Wirings), ``compression`` (Deep Compression).

Storage and speed of every method: ``serialize`` (the byte formats: one container, dense, CSR,
binary), ``runners`` (the forward pass each format runs, and the harness that times them),
``comparison`` (every method on one benchmark: bytes, accuracy, speed).
"""

__version__ = "0.1.0"
