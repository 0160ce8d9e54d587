"""The ``birdc``/``birdcl`` command table and abbreviation expansion (client/commands.c).

BIRD's server takes full keywords only; its clients expand what the user typed against a
tree built from every ``CF_CLI`` command (conf/commands.h, generated from the grammar and
sorted): each word may be any unambiguous prefix of a keyword at its place (``sh pro a``
is ``show protocols all``), the rest of the line (arguments) is passed on as typed. ``ro``
prefers ``route`` over ``roa`` (and ``rip``): BIRD gives those two a lower priority.

:data:`COMMANDS` is the table of BIRD 1.6.8 as Debian builds it (the birdc the tests run),
``(command, arguments, help, is_real_command)``, in the order of conf/commands.h, with one
command of BIRD 2.0 added: ``graceful restart`` (BIRD 1.6.8's clients answer "No such
command" to it and its daemon ``9001 syntax error``; bgpd-bird runs it, docs/birdrun.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

COMMANDS: tuple[tuple[str, str, str, int], ...] = (
    ("add roa", "<prefix> max <num> as <num> [table <name>]", "Add ROA record", 1),
    ("add", "roa ...", "Add ROA record", 0),
    ("configure check", '["<file>"]', "Parse configuration and check its validity", 1),
    ("configure confirm", "", "Confirm last configuration change - deactivate undo timeout", 1),
    ("configure soft timeout", "[<sec>]", "Reload configuration with undo timeout", 1),
    (
        "configure soft",
        '["<file>"] [timeout [<sec>]]',
        "Reload configuration and ignore changes in filters",
        1,
    ),
    ("configure timeout", "[<sec>]", "Reload configuration with undo timeout", 1),
    ("configure undo", "", "Undo last configuration change", 1),
    ("configure", "...", "Reload configuration", 0),
    ("configure", '["<file>"] [timeout [<sec>]]', "Reload configuration", 1),
    (
        "debug",
        '(<protocol> | "<pattern>" | all) (all | off | { states|routes|filters|interfaces|events|packets [, ...] })',
        "Control protocol debugging via BIRD logs",
        1,
    ),
    ("debug", "...", "Control protocol debugging via BIRD logs", 0),
    ("delete roa", "<prefix> max <num> as <num> [table <name>]", "Delete ROA record", 1),
    ("delete", "roa ...", "Delete ROA record", 0),
    ("disable", '(<protocol> | "<pattern>" | all) [message]', "Disable protocol", 1),
    ("down", "", "Shut the daemon down", 1),
    ("dump attributes", "", "Dump attribute cache", 1),
    ("dump events", "", "Dump event log", 1),
    ("dump interfaces", "", "Dump interface information", 1),
    ("dump neighbors", "", "Dump neighbor cache", 1),
    ("dump protocols", "", "Dump protocol information", 1),
    ("dump resources", "", "Dump all allocated resource", 1),
    ("dump routes", "", "Dump routing table", 1),
    ("dump sockets", "", "Dump open sockets", 1),
    ("dump", "...", "Dump debugging information", 0),
    (
        "echo",
        "(all | off | { debug|trace|info|remote|warning|error|auth [, ...] }) [<buffer-size>]",
        "Control echoing of log messages",
        1,
    ),
    ("echo", "...", "Control echoing of log messages", 0),
    ("enable", '(<protocol> | "<pattern>" | all) [message]', "Enable protocol", 1),
    ("eval", "<expr>", "Evaluate an expression", 1),
    ("exit", "", "Exit the client", 1),
    ("flush roa", "[table <name>]", "Removes all dynamic ROA records", 1),
    ("flush", "roa [table <name>]", "Removes all dynamic ROA records", 0),
    ("graceful restart", "", "Shut the daemon down for graceful restart", 1),  # BIRD 2.0's
    ("help", "", "Description of the help system", 1),
    (
        "mrt dump",
        '[table <name>|"<pattern>"] [to "<file>"] [filter <filter>|where <where filter>]',
        "Save MRT Table Dump into a file",
        0,
    ),
    (
        "mrt dump",
        '[table <name>|"<pattern>"] [to "<file>"] [filter <filter>|where <where filter>]',
        "Save mrt table dump v2 of table name <t> right now",
        1,
    ),
    (
        "mrtdump",
        '(<protocol> | "<pattern>" | all) (all | off | { states|messages [, ...] })',
        "Control protocol debugging via MRTdump format",
        1,
    ),
    ("mrtdump", "...", "Control protocol debugging via MRTdump files", 0),
    ("quit", "", "Quit the client", 1),
    ("reload in", '<protocol> | "<pattern>" | all', "Reload protocol (just imported routes)", 1),
    ("reload out", '<protocol> | "<pattern>" | all', "Reload protocol (just exported routes)", 1),
    ("reload", '<protocol> | "<pattern>" | all', "Reload protocol", 1),
    ("restart", '(<protocol> | "<pattern>" | all) [message]', "Restart protocol", 1),
    ("restrict", "", "Restrict current CLI session to safe commands", 1),
    ("show bfd sessions", "[<name>]", "Show information about BFD sessions", 1),
    ("show bfd", "...", "Show information about BFD protocol", 0),
    ("show interfaces summary", "", "Show summary of network interfaces", 1),
    ("show interfaces", "", "Show network interfaces", 1),
    ("show memory", "", "Show memory usage", 1),
    ("show ospf interface", '[<name>] ["<interface>"]', "Show information about interface", 1),
    ("show ospf lsadb", "...", "Show content of OSPF LSA database", 0),
    (
        "show ospf lsadb",
        "[global | area <id> | link] [type <num>] [lsid <id>] [self | router <id>] [<proto>]",
        "Show content of OSPF LSA database",
        1,
    ),
    ("show ospf neighbors", '[<name>] ["<interface>"]', "Show information about OSPF neighbors", 1),
    ("show ospf state all", "[<name>]", "Show information about all OSPF network state", 1),
    ("show ospf state", "[<name>]", "Show information about reachable OSPF network state", 1),
    ("show ospf state", "[all] [<name>]", "Show information about OSPF network state", 0),
    ("show ospf topology all", "[<name>]", "Show information about all OSPF network topology", 1),
    ("show ospf topology", "[<name>]", "Show information about reachable OSPF network topology", 1),
    ("show ospf topology", "[all] [<name>]", "Show information about OSPF network topology", 0),
    ("show ospf", "...", "Show information about OSPF protocol", 0),
    ("show ospf", "[<name>]", "Show information about OSPF protocol XXX", 1),
    ("show protocols all", '[<protocol> | "<pattern>"]', "Show routing protocol details", 1),
    ("show protocols", '[<protocol> | "<pattern>"]', "Show routing protocols", 1),
    ("show rip interfaces", '[<name>] ["<interface>"]', "Show information about RIP interfaces", 1),
    ("show rip neighbors", '[<name>] ["<interface>"]', "Show information about RIP neighbors", 1),
    ("show rip", "...", "Show information about RIP protocol", 0),
    ("show roa", "...", "Show ROA table", 0),
    (
        "show roa",
        "[<prefix> | in <prefix> | for <prefix>] [as <num>] [table <t>]",
        "Show ROA table",
        1,
    ),
    ("show route", "...", "Show routing table", 0),
    (
        "show route",
        "[<prefix>|for <prefix>|for <ip>] [table <t>] [filter <f>|where <cond>] [all] [primary] [filtered] [(export|preexport|noexport) <p>] [protocol <p>] [stats|count]",
        "Show routing table",
        1,
    ),
    ("show static", "[<name>]", "Show details of static protocol", 1),
    ("show status", "", "Show router status", 1),
    ("show symbols", "...", "Show all known symbolic names", 0),
    (
        "show symbols",
        "[table|filter|function|protocol|template|roa|<symbol>]",
        "Show all known symbolic names",
        1,
    ),
    ("show", "...", "Show status information", 0),
)


@dataclass
class _Node:
    token: str
    prio: int
    sons: list[_Node] = field(default_factory=list)
    cmd: tuple[str, str, str, int] | None = None
    help: tuple[str, str, str, int] | None = None


def _build() -> _Node:
    root = _Node("", 1)
    for entry in COMMANDS:
        node = root
        for word in entry[0].split():
            for son in node.sons:
                if son.token == word:
                    break
            else:
                son = _Node(word, 0 if word in ("roa", "rip") else 1)
                node.sons.append(son)
            node = son
        if entry[3]:
            node.cmd = entry
        else:
            node.help = entry
    return root


ROOT = _build()


def _find_abbrev(node: _Node, word: str) -> tuple[_Node | None, bool]:
    """cmd_find_abbrev: (match, ambiguous)."""
    best = best2 = None
    for m in node.sons:
        if m.token == word:
            return m, False
        if len(m.token) > len(word) and m.token.startswith(word):
            if best is not None and best.prio > m.prio:
                continue
            if best is not None and best.prio == m.prio:
                best2 = best
            best = m
    if best2 is not None:
        return None, True
    return best, False


def _help_line(entry: tuple[str, str, str, int]) -> str:
    return f"{entry[0] + ' ' + entry[1]:<45}  {entry[2]}"


class ExpandError(Exception):
    """The client's answer to a line it will not send (printed on stdout, exit 0)."""


def expand(line: str) -> str:
    """cmd_expand: the full command, or :class:`ExpandError` with birdcl's message."""
    node = ROOT
    i, n = 0, len(line)
    args_at = 0
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        start = i
        while i < n and not line[i].isspace():
            i += 1
        m, ambiguous = _find_abbrev(node, line[start:i])
        if m is None:
            if not ambiguous:
                break
            word = line[start:i]
            listing = [
                _help_line(s.help or s.cmd)  # type: ignore[arg-type]
                for s in node.sons
                if len(s.token) > len(word) and s.token.startswith(word) and (s.help or s.cmd)
            ]
            raise ExpandError("\n".join(["Ambiguous command, possible expansions are:", *listing]))
        args_at = i
        node = m
    if node.cmd is None:
        raise ExpandError("No such command. Press `?' for help.")
    return node.cmd[0] + line[args_at:]
