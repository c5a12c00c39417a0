"""The bundled sample file for `companion demo`."""
