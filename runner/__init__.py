"""layerjoule runner: runs on the board (Python 3.6, standard library + numpy)."""
