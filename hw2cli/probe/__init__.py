"""`hw2 probe`: the homework report's theory answers (Q2.1, Q2.4) turned into measurements.

One module per probe; each exposes one library function that returns a result dataclass with
the measured numbers and a verdict per claim. ``render`` prints and serialises the results,
``plot`` draws them. Probes that train use the project's GPT trainer and model (``_gpt``).
"""

PROBES = ("attention-cost", "softmax-scale", "positions", "receptive-field", "heads")
