"""A small course project: a hand-written backprop for fully connected networks, checked by refbp's gate.

``backprop_fixed.backprop`` is correct; ``backprop_buggy.backprop`` carries an
off-by-one in its backward loop that the gate catches at layer 1.
"""
