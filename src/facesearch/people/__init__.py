"""People: faces grouped into persons, for sources whose policy declares that purpose."""
