"""The ``bincheck`` command groups, one module each.

Each module's ``add_to(commands)`` adds its parser(s) to the top-level subparsers and sets
``run``, the function that carries the command out. Heavy modules (torch, training, the
model) are imported inside the run functions, so ``bincheck --help`` stays fast.
"""
