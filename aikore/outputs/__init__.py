"""What an instance produced (its INSTANCE_OUTPUT_DIR): the gallery, thumbnails, PNG parameters."""
