"""The subcommands of `hdl`, one module each: add(subparsers) defines a command's options and sets
run(args) -> summary dict and show(args, summary) (the text output) as the parser's defaults."""
from hdl.commands import autoencoder, autotune, cifar, evaluate, mnist, paper, predict, section8

MODULES = (paper, cifar, mnist, autoencoder, section8, evaluate, predict, autotune)
