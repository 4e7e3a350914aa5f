"""``bincheck endpoint load``: drive a counting endpoint at set concurrencies and measure it.

``figures`` turns one step's calls into its figures and picks the capacity figure (pure);
``driver`` makes the calls, through the checker's own endpoint adapter and client
configuration; ``report`` prints the table and writes the JSON and the plot.
"""
