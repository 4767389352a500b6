"""The character-level micro-GPT of homework Q2.2-Q2.9: model, data, trainer, sampling."""
