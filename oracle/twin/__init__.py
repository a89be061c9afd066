"""The torch twin of typed networks: one module per layer family, written with ``torch.nn.functional``."""
