"""The Typer command-line interface: thin wrappers that parse, call one function, print."""
