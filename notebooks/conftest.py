"""``pytest --nbmake notebooks``: every cell's reply is read as soon as it comes.

nbmake runs the notebooks with nbclient in this pytest process; ``s2lab.nbclient_wakeup`` mends nbclient's
occasional wait of a whole cell timeout for a reply that has come (jupyter/nbclient#312), as for the book and
``s2lab bench --notebooks``.
"""

from s2lab import nbclient_wakeup

nbclient_wakeup.install()
