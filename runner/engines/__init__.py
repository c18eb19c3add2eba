"""Engines: what runs the network layer by layer (pycaffe, OpenCV dnn, the synthetic stand-in)."""
