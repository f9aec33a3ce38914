"""Images: upload and download routes, cleaning an upload to what is safe to keep, where the bytes are stored."""
