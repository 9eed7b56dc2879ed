"""Photos in and out: reading any photo as 8-bit RGB, truncated files refused (read.py), and
drawing instances over it for people to look at (draw.py). Below every room that handles pixels."""
