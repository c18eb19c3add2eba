"""The network definition: reading Caffe prototxt/caffemodel files (net.py) and per-layer cost (cost.py)."""
