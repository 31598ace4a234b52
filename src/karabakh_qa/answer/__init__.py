"""The answer pipeline's stages (see ../shared/design/layout.md): spans so far."""
