"""The live simulator: the history's fleet carried on tick by tick with the same physics,
under scenarios and offsets an operator applies while it runs."""
