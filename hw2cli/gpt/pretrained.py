"""OpenAI's GPT-2 weights in hw2's model (``--init-from``), as nanoGPT's ``from_pretrained``: a model
id fetched with ``huggingface_hub`` into its cache (``HF_HUB_OFFLINE=1``: the cache only), or a folder
in the Hugging Face layout. Safetensors only (never a pickle); GPT-2's ``Conv1D`` weights are transposed.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hw2cli.common import schema
from hw2cli.common.errors import Hw2Error
from hw2cli.common.options import OptionError
from hw2cli.gpt.model import GPT, GPT2_STYLE, GPTConfig
from hw2cli.gpt.options import TrainOptions

HUB_MODELS = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
HUB_OWNER = "openai-community"
FILES = ("config.json", "model.safetensors", "tokenizer.json")
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def hub_cache() -> Path:
    """Where huggingface_hub keeps models: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
    ``~/.cache/huggingface/hub`` (read at call time, so a changed environment counts)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve(source: str) -> Path:
    """The folder holding ``FILES`` for a model id (downloaded or cached) or a local folder."""
    if source in HUB_MODELS:
        folder = _from_hub(source)
    else:
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise OptionError(
                f"{{init_from}} {source!r} is neither {', '.join(HUB_MODELS)} nor a folder; "
                "give a model id or a folder with config.json and model.safetensors"
            )
    for name in FILES[:2]:
        if not (folder / name).is_file():
            raise OptionError(
                f"{folder / name} is missing; {{init_from}} needs config.json and model.safetensors"
            )
    return folder


def _from_hub(name: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo, cache = f"{HUB_OWNER}/{name}", hub_cache()
    try:
        folder = snapshot_download(
            repo, cache_dir=cache, allow_patterns=list(FILES), local_files_only=_offline()
        )
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        if _offline():
            how = "HF_HUB_OFFLINE is set"
        elif isinstance(exc, LocalEntryNotFoundError):
            how = "the hub could not be reached"
        else:
            how = f"the download failed ({type(exc).__name__})"
        raise OptionError(
            f"no copy of {repo} in {cache} and {how}; run once online (or `hf download {repo}`), "
            f"or put {', '.join(FILES)} in a folder and pass {{init_from}} FOLDER"
        ) from None
    return Path(folder)


def hf_config(folder: Path) -> dict:
    """GPT-2's ``config.json``, refusing a model hw2's GPT-2 variant cannot reproduce."""
    cfg = schema.parse_json(folder / "config.json", fix="give an intact model folder")  # a FIFO: refused
    if not isinstance(cfg, dict):
        raise Hw2Error(f"{folder / 'config.json'} is not a JSON object; give an intact model folder")
    checks = {  # key: (its default, what hw2's GPT-2 computes)
        "model_type": (None, "gpt2"),
        "activation_function": ("gelu_new", ("gelu_new", "gelu_pytorch_tanh")),
        "layer_norm_epsilon": (1e-5, 1e-5),
        "scale_attn_weights": (True, True),
        "scale_attn_by_inverse_layer_idx": (False, False),
    }
    for key, (default, wanted) in checks.items():
        value = cfg.get(key, default)
        if value != wanted and not (isinstance(wanted, tuple) and value in wanted):
            raise Hw2Error(
                f"{folder / 'config.json'}: {key} is {value!r}; hw2 loads GPT-2 models with {wanted!r}"
            )
    return cfg


def load_pretrained(
    source: str, block_size: int | None = None, dropout: float = 0.0, use_flash_attn: bool = False
) -> tuple[GPT, Path]:
    """hw2's GPT-2 variant with the weights of ``source``, and their folder; ``block_size``
    (default: ``n_positions``) keeps the first positions, as nanoGPT's ``crop_block_size``."""
    from safetensors.torch import load_file

    folder = resolve(source)
    cfg = hf_config(folder)
    n_positions = cfg.get("n_positions", cfg.get("n_ctx", 1024))
    block_size = block_size or n_positions
    if block_size > n_positions:
        raise OptionError(
            f"{{block_size}} {block_size} is longer than the {n_positions} positions {source} knows"
        )
    config = GPTConfig(
        n_layer=cfg["n_layer"],
        n_head=cfg["n_head"],
        n_embd=cfg["n_embd"],
        vocab_size=cfg["vocab_size"],
        block_size=block_size,
        dropout=dropout,
        use_flash_attn=use_flash_attn,
        **GPT2_STYLE,
    )
    model = GPT(config)
    state = _hw2_state(load_file(str(folder / "model.safetensors")), block_size)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]  # tied to tok_emb.weight
    if missing or unexpected:
        shown = ", ".join((missing + unexpected)[:3])
        raise Hw2Error(
            f"{folder / 'model.safetensors'} does not fit config.json ({shown}); give an intact model"
        )
    return model, folder


def _hw2_state(hf: dict[str, torch.Tensor], block_size: int) -> dict[str, torch.Tensor]:
    """Rename GPT-2's tensors to hw2's, transpose the Conv1D weights, crop the positions."""
    state = {}
    for key, tensor in hf.items():
        key = key.removeprefix("transformer.")
        if key == "lm_head.weight" or key.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # the tied head, and causal-mask buffers
        if key.endswith(CONV1D):
            tensor = tensor.t()
        key = {"wte.weight": "tok_emb.weight", "wpe.weight": "pos_emb.weight"}.get(key, key)
        if key == "pos_emb.weight":
            tensor = tensor[:block_size]
        state[key.replace("h.", "blocks.", 1) if key.startswith("h.") else key] = tensor.float().contiguous()
    return state


def model_for(opts: TrainOptions, vocab_size: int, resumed: GPTConfig | None = None) -> GPT:
    """The model a training run starts from: a fresh ``model_type``, GPT-2's weights with
    ``init_from``, or (``resumed``: a fine-tuned run's saved config) an empty model to be filled
    from the checkpoint."""
    if opts.init_from is None:
        return GPT(
            GPTConfig.from_preset(
                opts.model_type,
                vocab_size=vocab_size,
                block_size=opts.block_size,
                dropout=opts.dropout,
                use_flash_attn=opts.flash_attn,
                pos_emb=opts.pos_emb,
                attn_scale=opts.attn_scale,
                **({} if opts.n_head is None else {"n_head": opts.n_head}),
            )
        )
    if resumed is not None:
        return GPT(resumed)
    model, _ = load_pretrained(opts.init_from, opts.block_size, opts.dropout, use_flash_attn=opts.flash_attn)
    if vocab_size > model.config.vocab_size:
        raise Hw2Error(
            f"the tokenizer has {vocab_size} tokens, more than the model's "
            f"{model.config.vocab_size}; use the model's tokenizer"
        )
    return model
