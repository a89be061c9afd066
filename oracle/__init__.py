"""Independent checkers for refbp: a PyTorch autograd twin and finite differences."""
