"""Problems: rules turn measurements into a short list technicians can act on."""
