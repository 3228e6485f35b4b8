"""Pure domain rules of facturo: standard library only, no Django, no I/O, no clock."""
