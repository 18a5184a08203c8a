"""Features: the spec models are built from, and the encoder that makes batches from prepared data."""

from mistrec.features.encoder import GAP_BUCKETS, EncodedRows, FeatureEncoder, FeatureSpec, IndexedRows

__all__ = ["GAP_BUCKETS", "EncodedRows", "FeatureEncoder", "FeatureSpec", "IndexedRows"]
