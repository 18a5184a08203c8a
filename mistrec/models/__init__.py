"""Models: the mist transfer model and the baselines, all reading a Batch and returning logits."""

from mistrec.models.registry import REGISTRY, build_model, conversion_models, model_config

__all__ = ["REGISTRY", "build_model", "conversion_models", "model_config"]
