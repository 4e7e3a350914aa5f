"""Pure domain logic of the checker: no AWS, no Powertools, no I/O."""
