"""Protocol numbers: message types, attribute codes, AFI/SAFI, error codes (RFC 4271 §4, §6)."""

MARKER = b"\xff" * 16
HEADER_LEN = 19
MAX_MESSAGE = 4096
MAX_EXTENDED_MESSAGE = 65535  # RFC 8654
AS_TRANS = 23456  # RFC 6793

# Limits a peer cannot push past (local policy, not RFC numbers). An UPDATE beyond either is
# treated as withdrawn (RFC 7606 §2), so the session stays up and the routes are not used.
# More path attributes than there are type codes can only be duplicates (RFC 7606 §3(g) would
# discard them one by one): past MAX_PATH_ATTRS the list is Malformed (3/1).
MAX_PATH_ATTRS = 256
# An AS_PATH (or AS4_PATH) longer than this is Malformed AS_PATH (3/11), as FRR's
# ``bgp maxas-limit`` and BIRD's path length filters do; 1000 ASNs is about what a 4096-octet
# UPDATE can hold, and far beyond any real path (prepending included).
MAX_AS_PATH_ASNS = 1000
MAX_AS_PATH_SEGMENTS = 255

# Message types
OPEN = 1
UPDATE = 2
NOTIFICATION = 3
KEEPALIVE = 4
ROUTE_REFRESH = 5
MESSAGE_NAMES = {
    OPEN: "OPEN",
    UPDATE: "UPDATE",
    NOTIFICATION: "NOTIFICATION",
    KEEPALIVE: "KEEPALIVE",
    ROUTE_REFRESH: "ROUTE-REFRESH",
}

# Address families
AFI_IPV4 = 1
AFI_IPV6 = 2
SAFI_UNICAST = 1
SAFI_MULTICAST = 2
IPV4_UNICAST = (AFI_IPV4, SAFI_UNICAST)
IPV6_UNICAST = (AFI_IPV6, SAFI_UNICAST)
FAMILY_NAMES = {IPV4_UNICAST: "ipv4", IPV6_UNICAST: "ipv6"}
FAMILY_BY_NAME = {v: k for k, v in FAMILY_NAMES.items()}

# Path attribute type codes
ATTR_ORIGIN = 1
ATTR_AS_PATH = 2
ATTR_NEXT_HOP = 3
ATTR_MED = 4
ATTR_LOCAL_PREF = 5
ATTR_ATOMIC_AGGREGATE = 6
ATTR_AGGREGATOR = 7
ATTR_COMMUNITIES = 8
ATTR_ORIGINATOR_ID = 9
ATTR_CLUSTER_LIST = 10
ATTR_MP_REACH_NLRI = 14
ATTR_MP_UNREACH_NLRI = 15
ATTR_EXT_COMMUNITIES = 16
ATTR_AS4_PATH = 17
ATTR_AS4_AGGREGATOR = 18
ATTR_LARGE_COMMUNITY = 32

# Attribute flags
FLAG_OPTIONAL = 0x80
FLAG_TRANSITIVE = 0x40
FLAG_PARTIAL = 0x20
FLAG_EXTENDED = 0x10

# ORIGIN values
ORIGIN_IGP = 0
ORIGIN_EGP = 1
ORIGIN_INCOMPLETE = 2
ORIGIN_NAMES = ("igp", "egp", "incomplete")

# AS_PATH segment types (RFC 4271, RFC 5065)
AS_SET = 1
AS_SEQUENCE = 2
AS_CONFED_SEQUENCE = 3
AS_CONFED_SET = 4
SEGMENT_NAMES = {
    AS_SET: "set",
    AS_SEQUENCE: "sequence",
    AS_CONFED_SEQUENCE: "confed_sequence",
    AS_CONFED_SET: "confed_set",
}
SEGMENT_BY_NAME = {v: k for k, v in SEGMENT_NAMES.items()}

# Well-known communities (RFC 1997)
NO_EXPORT = 0xFFFFFF01
NO_ADVERTISE = 0xFFFFFF02
NO_EXPORT_SUBCONFED = 0xFFFFFF03

# Capability codes
CAP_MULTIPROTOCOL = 1
CAP_ROUTE_REFRESH = 2
CAP_EXTENDED_NEXT_HOP = 5
CAP_EXTENDED_MESSAGE = 6
CAP_GRACEFUL_RESTART = 64
CAP_FOUR_OCTET_AS = 65
CAP_ADD_PATH = 69
CAP_ENHANCED_ROUTE_REFRESH = 70
CAP_LONG_LIVED_GR = 71
CAP_FQDN = 73
CAP_ROUTE_REFRESH_CISCO = 128

# NOTIFICATION error codes and subcodes (RFC 4271 §4.5, §6; RFC 4486; RFC 6608; RFC 7313)
ERR_HEADER = 1
ERR_OPEN = 2
ERR_UPDATE = 3
ERR_HOLD_TIMER = 4
ERR_FSM = 5
ERR_CEASE = 6
ERR_ROUTE_REFRESH = 7

# 1: Message Header Error
HDR_NOT_SYNCHRONIZED = 1
HDR_BAD_LENGTH = 2
HDR_BAD_TYPE = 3
# 2: OPEN Message Error
OPEN_UNSUPPORTED_VERSION = 1
OPEN_BAD_PEER_AS = 2
OPEN_BAD_BGP_ID = 3
OPEN_UNSUPPORTED_OPT_PARAM = 4
OPEN_UNACCEPTABLE_HOLD_TIME = 6
OPEN_UNSUPPORTED_CAPABILITY = 7
OPEN_ROLE_MISMATCH = 11
# 3: UPDATE Message Error
UPD_MALFORMED_ATTR_LIST = 1
UPD_UNRECOGNIZED_WELLKNOWN = 2
UPD_MISSING_WELLKNOWN = 3
UPD_ATTR_FLAGS = 4
UPD_ATTR_LENGTH = 5
UPD_INVALID_ORIGIN = 6
UPD_INVALID_NEXT_HOP = 8
UPD_OPTIONAL_ATTR = 9
UPD_INVALID_NETWORK = 10
UPD_MALFORMED_AS_PATH = 11
# 5: FSM error (RFC 6608)
FSM_UNSPECIFIED = 0
FSM_OPENSENT = 1
FSM_OPENCONFIRM = 2
FSM_ESTABLISHED = 3
# 6: Cease (RFC 4486, RFC 8538)
CEASE_MAX_PREFIXES = 1
CEASE_ADMIN_SHUTDOWN = 2
CEASE_PEER_DECONFIGURED = 3
CEASE_ADMIN_RESET = 4
CEASE_CONNECTION_REJECTED = 5
CEASE_CONFIG_CHANGE = 6
CEASE_COLLISION = 7
CEASE_OUT_OF_RESOURCES = 8
CEASE_HARD_RESET = 9
CEASE_BFD_DOWN = 10  # RFC 9384
# 7: ROUTE-REFRESH Message Error (RFC 7313)
RR_INVALID_LENGTH = 1

# ROUTE-REFRESH subtypes (RFC 7313)
RR_NORMAL = 0
RR_BORR = 1
RR_EORR = 2

ERROR_NAMES: dict[int, tuple[str, dict[int, str]]] = {
    ERR_HEADER: (
        "Message Header Error",
        {1: "Connection Not Synchronized", 2: "Bad Message Length", 3: "Bad Message Type"},
    ),
    ERR_OPEN: (
        "OPEN Message Error",
        {
            1: "Unsupported Version Number",
            2: "Bad Peer AS",
            3: "Bad BGP Identifier",
            4: "Unsupported Optional Parameter",
            6: "Unacceptable Hold Time",
            7: "Unsupported Capability",
            11: "Role Mismatch",
        },
    ),
    ERR_UPDATE: (
        "UPDATE Message Error",
        {
            1: "Malformed Attribute List",
            2: "Unrecognized Well-known Attribute",
            3: "Missing Well-known Attribute",
            4: "Attribute Flags Error",
            5: "Attribute Length Error",
            6: "Invalid ORIGIN Attribute",
            8: "Invalid NEXT_HOP Attribute",
            9: "Optional Attribute Error",
            10: "Invalid Network Field",
            11: "Malformed AS_PATH",
        },
    ),
    ERR_HOLD_TIMER: ("Hold Timer Expired", {}),
    ERR_FSM: (
        "Finite State Machine Error",
        {
            1: "Receive Unexpected Message in OpenSent State",
            2: "Receive Unexpected Message in OpenConfirm State",
            3: "Receive Unexpected Message in Established State",
        },
    ),
    ERR_CEASE: (
        "Cease",
        {
            1: "Maximum Number of Prefixes Reached",
            2: "Administrative Shutdown",
            3: "Peer De-configured",
            4: "Administrative Reset",
            5: "Connection Rejected",
            6: "Other Configuration Change",
            7: "Connection Collision Resolution",
            8: "Out of Resources",
            9: "Hard Reset",
            10: "BFD Down",
        },
    ),
    ERR_ROUTE_REFRESH: ("ROUTE-REFRESH Message Error", {1: "Invalid Message Length"}),
}


def error_reason(code: int, subcode: int) -> str:
    """A readable name for a NOTIFICATION code/subcode pair."""
    name, subs = ERROR_NAMES.get(code, (f"Unknown error {code}", {}))
    if subcode == 0 or not subs:
        return name if subcode == 0 else f"{name} (subcode {subcode})"
    return f"{name}: {subs.get(subcode, f'subcode {subcode}')}"
