"""`hw2 probe`: the homework report's theory answers (Q2.1, Q2.4) turned into measurements.

One module per probe; each exposes one library function that takes the probe's options model
(``options``) and returns a result dataclass with the measured numbers and a verdict per claim
(``common``: the verdict rules). ``render`` prints and serialises the results, ``plot`` draws
them. Probes that train use the project's GPT trainer and model (``_gpt``, ``training``).
"""

PROBES = ("attention-cost", "softmax-scale", "positions", "receptive-field", "heads")
