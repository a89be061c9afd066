"""A course project's hand-written convolution layer, gated by ``oracle.layer_gate.assert_layer_matches``."""
