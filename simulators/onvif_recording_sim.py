"""An ONVIF Profile G camera's search and recording answers, mounted into ``onvif_sim``: what it
recorded to its own card (recordings with their spans, a gap where the simulation puts one), the
search service's asynchronous searches (``FindRecordings``/``FindEvents`` hand out a search
token; ``GetRecordingSearchResults``/``GetEventSearchResults`` deliver the results in batches,
``SearchState`` ``Searching`` until the last), ``GetRecordingSummary``,
``GetRecordingInformation`` and ``EndSearch``.

Written from the ONVIF Recording Search Service Specification (search sessions, results,
recording events ``tns1:RecordingHistory/Track/State`` with ``IsDataPresent``). Hostile
switches (``SearchMode``): answers that are not XML, a search that never completes, a result
list far larger than asked for.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

SEARCH_NS = "http://www.onvif.org/ver10/search/wsdl"
RECORDING_NS = "http://www.onvif.org/ver10/recording/wsdl"
TRACK_TOPIC = "tns1:RecordingHistory/Track/State"
CONCRETE_SET = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
ACTIONS = frozenset(
    {
        "FindRecordings",
        "GetRecordingSearchResults",
        "FindEvents",
        "GetEventSearchResults",
        "GetRecordingSummary",
        "GetRecordingInformation",
        "EndSearch",
    }
)

Span = tuple[dt.datetime, dt.datetime]


class SearchMode(enum.StrEnum):
    """How the search service answers."""

    NORMAL = "normal"
    MALFORMED = "malformed"  # search answers that are not XML
    NEVER_COMPLETES = "never_completes"  # "Searching" forever, nothing found
    HUGE = "huge"  # ``huge_count`` recordings in one answer, whatever MaxResults says


@dataclass
class SimRecording:
    """One recording (a card's recording of one source) and the spans it holds (UTC)."""

    token: str
    source: str = "Camera1"
    track: str = "VIDEO001"
    spans: list[Span] = field(default_factory=list)

    def record(self, start: dt.datetime, end: dt.datetime) -> None:
        """Add recording over ``[start, end]``."""
        self.spans.append((start, end))
        self.spans.sort()


@dataclass
class _Search:
    items: list[str]  # result XML, in order
    kind: str  # "recordings" or "events"
    taken: int = 0
    polls: int = 0


@dataclass
class RecordingStore:
    """The camera's recordings and its open searches; change it while it runs."""

    recordings: list[SimRecording] = field(default_factory=list)
    batch_max: int = 3  # results per batch at most, whatever the client asks
    mode: SearchMode = SearchMode.NORMAL
    huge_count: int = 25_000
    event_search: bool = True  # False: FindEvents is not supported (a fault), as on some cards
    searches: dict[str, _Search] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    _tokens: itertools.count[int] = field(default_factory=itertools.count)

    def handle(self, body: str) -> str | None:
        """The SOAP body for a search or recording request, ``None`` if ``body`` is not one."""
        try:
            envelope = ET.fromstring(body)  # noqa: S314  # the simulator reads its own tests' requests
        except ET.ParseError:
            return None
        soap_body = next((e for e in envelope if _local(e.tag) == "Body"), None)
        request = None if soap_body is None else next(iter(soap_body), None)
        if request is None or _local(request.tag) not in ACTIONS:
            return None
        action = _local(request.tag)
        self.calls.append(action)
        if self.mode is SearchMode.MALFORMED and action != "EndSearch":
            return f"<tse:{action}Response><tt:SearchState>Compl<<</tse:"
        return self._answer(action, {_local(e.tag): e for e in request.iter()}, request)

    def _answer(self, action: str, params: dict[str, ET.Element], request: ET.Element) -> str:
        if action == "FindRecordings":
            items = [_recording(r) for r in self.recordings]
            if self.mode is SearchMode.HUGE:
                filler = SimRecording("X", spans=[(_EPOCH, _EPOCH)])
                items += [_recording(filler, f"R{i}") for i in range(self.huge_count)]
            return self._open("recordings", items, "FindRecordingsResponse")
        if action == "FindEvents" and not self.event_search:
            return _fault("ter:ActionNotSupported", "FindEvents is not supported")
        if action == "FindEvents":
            start = _parse(_text(params, "StartPoint"))
            end_text = _text(params, "EndPoint")
            end = _parse(end_text) if end_text else dt.datetime.now(dt.UTC)
            wanted = {e.text for e in request.iter() if _local(e.tag) == "IncludedRecordings"}
            include_start = _text(params, "IncludeStartState") == "true"
            items = []
            for recording in self.recordings:
                if not wanted or recording.token in wanted:
                    items += _events(recording, start, end, include_start=include_start)
            return self._open("events", items, "FindEventsResponse")
        if action in ("GetRecordingSearchResults", "GetEventSearchResults"):
            asked = int(_text(params, "MaxResults") or self.batch_max)
            return self._results(action, _text(params, "SearchToken"), asked)
        if action == "EndSearch":
            token = _text(params, "SearchToken")
            self.ended.append(token)
            self.searches.pop(token, None)
            return (
                f'<tse:EndSearchResponse xmlns:tse="{SEARCH_NS}"><tse:Endpoint>'
                f"{_time(dt.datetime.now(dt.UTC))}</tse:Endpoint></tse:EndSearchResponse>"
            )
        if action == "GetRecordingSummary":
            spans = [s for r in self.recordings for s in r.spans]
            first = min((s for s, _ in spans), default=_EPOCH)
            last = max((e for _, e in spans), default=_EPOCH)
            return (
                f'<tse:GetRecordingSummaryResponse xmlns:tse="{SEARCH_NS}"><tse:Summary>'
                f"<tt:DataFrom>{_time(first)}</tt:DataFrom><tt:DataUntil>{_time(last)}"
                f"</tt:DataUntil><tt:NumberRecordings>{len(self.recordings)}"
                "</tt:NumberRecordings></tse:Summary></tse:GetRecordingSummaryResponse>"
            )
        token = _text(params, "RecordingToken")  # GetRecordingInformation
        found = next((r for r in self.recordings if r.token == token), None)
        if found is None:
            return _fault("ter:InvalidArgVal/ter:NoRecording", f"no recording {token}")
        return (
            f'<tse:GetRecordingInformationResponse xmlns:tse="{SEARCH_NS}">'
            + _recording(found, tag="tse:RecordingInformation")
            + "</tse:GetRecordingInformationResponse>"
        )

    def _open(self, kind: str, items: list[str], response: str) -> str:
        token = f"SearchToken{next(self._tokens)}"
        self.searches[token] = _Search(items, kind)
        return (
            f'<tse:{response} xmlns:tse="{SEARCH_NS}"><tse:SearchToken>{token}'
            f"</tse:SearchToken></tse:{response}>"
        )

    def _results(self, action: str, token: str, asked: int) -> str:
        search = self.searches.get(token)
        if search is None:
            return _fault("ter:InvalidArgVal/ter:InvalidToken", f"no search {token}")
        search.polls += 1
        if self.mode is SearchMode.NEVER_COMPLETES:
            batch: list[str] = []
            state = "Searching"
        elif self.mode is SearchMode.HUGE and search.kind == "recordings":
            batch, search.taken = search.items[search.taken :], len(search.items)
            state = "Completed"
        else:
            # The first poll finds the search still running and nothing yet, as devices do.
            size = 0 if search.polls == 1 else max(1, min(asked, self.batch_max))
            batch = search.items[search.taken : search.taken + size]
            search.taken += len(batch)
            state = "Completed" if search.taken >= len(search.items) else "Searching"
        result = "RecordingInformation" if search.kind == "recordings" else "Result"
        response = action + "Response"
        return (
            f'<tse:{response} xmlns:tse="{SEARCH_NS}"><tse:ResultList>'
            f"<tt:SearchState>{state}</tt:SearchState>"
            + "".join(f"<tt:{result}>{item}</tt:{result}>" for item in batch)
            + f"</tse:ResultList></tse:{response}>"
        )


_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(params: dict[str, ET.Element], name: str) -> str:
    element = params.get(name)
    return "" if element is None or element.text is None else element.text.strip()


def _parse(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _recording(recording: SimRecording, token: str | None = None, *, tag: str = "") -> str:
    """A ``tt:RecordingInformation``'s content (wrapped in ``tag`` if given)."""
    first = min((s for s, _ in recording.spans), default=None)
    last = max((e for _, e in recording.spans), default=None)
    span = (
        f"<tt:EarliestRecording>{_time(first)}</tt:EarliestRecording>"
        f"<tt:LatestRecording>{_time(last)}</tt:LatestRecording>"
        if first and last
        else ""
    )
    track_span = (
        f"<tt:DataFrom>{_time(first)}</tt:DataFrom><tt:DataTo>{_time(last)}</tt:DataTo>"
        if first and last
        else ""
    )
    inner = (
        f"<tt:RecordingToken>{escape(token or recording.token)}</tt:RecordingToken>"
        f"<tt:Source><tt:SourceId>{escape(recording.source)}</tt:SourceId>"
        f"<tt:Name>{escape(recording.source)}</tt:Name><tt:Location>SD</tt:Location>"
        "<tt:Description>card</tt:Description><tt:Address>local</tt:Address></tt:Source>"
        f"{span}<tt:Content>continuous</tt:Content>"
        f"<tt:Track><tt:TrackToken>{escape(recording.track)}</tt:TrackToken>"
        f"<tt:TrackType>Video</tt:TrackType><tt:Description>main</tt:Description>{track_span}"
        "</tt:Track><tt:RecordingStatus>Recording</tt:RecordingStatus>"
    )
    return f"<{tag}>{inner}</{tag}>" if tag else inner


def _events(
    recording: SimRecording, start: dt.datetime, end: dt.datetime, *, include_start: bool
) -> list[str]:
    """The track's ``IsDataPresent`` changes within ``[start, end]``, oldest first, after its
    state at ``start`` when asked for."""
    found: list[str] = []
    if include_start:
        present = any(s <= start < e for s, e in recording.spans)
        found.append(_event(recording, start, present=present, start_state=True))
    changes = [(s, True) for s, _ in recording.spans] + [(e, False) for _, e in recording.spans]
    for moment, present in sorted(changes):
        if start < moment <= end:
            found.append(_event(recording, moment, present=present, start_state=False))
    return found


def _event(
    recording: SimRecording, moment: dt.datetime, *, present: bool, start_state: bool
) -> str:
    value = "true" if present else "false"
    return (
        f"<tt:RecordingToken>{escape(recording.token)}</tt:RecordingToken>"
        f"<tt:TrackToken>{escape(recording.track)}</tt:TrackToken>"
        f"<tt:Time>{_time(moment)}</tt:Time><tt:Event>"
        '<wsnt:Topic xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" '
        'xmlns:tns1="http://www.onvif.org/ver10/topics" '
        f"Dialect={quoteattr(CONCRETE_SET)}>{TRACK_TOPIC}</wsnt:Topic>"
        '<wsnt:Message xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2">'
        f'<tt:Message UtcTime="{_time(moment)}" PropertyOperation="Changed"><tt:Source>'
        f'<tt:SimpleItem Name="RecordingToken" Value={quoteattr(recording.token)}/>'
        f'<tt:SimpleItem Name="Track" Value={quoteattr(recording.track)}/></tt:Source>'
        f'<tt:Data><tt:SimpleItem Name="IsDataPresent" Value="{value}"/></tt:Data>'
        "</tt:Message></wsnt:Message></tt:Event>"
        f"<tt:StartStateEvent>{'true' if start_state else 'false'}</tt:StartStateEvent>"
    )


def _fault(subcode: str, reason: str) -> str:
    return (
        "<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode>"
        f"<env:Value>{subcode}</env:Value></env:Subcode></env:Code><env:Reason>"
        f'<env:Text xml:lang="en">{escape(reason)}</env:Text></env:Reason></env:Fault>'
    )
