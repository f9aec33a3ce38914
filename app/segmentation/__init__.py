"""Click-to-segment: the route that forwards clicks to the segment service, and the masks it answers (RLE)."""
