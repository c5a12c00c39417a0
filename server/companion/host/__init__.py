"""The engine host process: the only process that imports a model library.

`main` is its loop, `protocol` the messages it exchanges with the language server,
`prefix` the prefill budget it applies next to the KV cache, `verdicts` what the server
remembers about engines that crashed on this machine, `engine_build` how llama.cpp is
compiled for it.
"""
