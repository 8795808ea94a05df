"""Detection efficacy: real UDP reverse-shell techniques against a throwaway test host.

* ``netns``: the test host (client + server network namespaces, veth pair, clean-up);
* ``listener``: the attacker's side, run inside the server namespace;
* ``techniques``: the catalogue (shells and benign look-alikes), as data;
* ``runner``: runs techniques with timeouts and kills their sessions;
* ``capture``: our own kernel audit rules and a netlink record reader;
* ``check``: the live pipeline (normalizer + streaming engines) and alert attribution;
* ``matrix``: technique × rule verdicts rendered for the terminal, Markdown and HTML.
"""
