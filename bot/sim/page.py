"""The demo as a page: what the local stand-in for Slack received (bot/sim/slack.py `FakeSlack.log`),
drawn as Slack shows it. Channel messages with their threads (a parent that was updated is marked
edited and shows its latest text), Block Kit sections, fields, context lines and buttons (a button's
confirmation on hover), the slash commands with their ephemeral answers, direct messages and the App
Home.

Nothing here describes a message a second time: every line comes from a payload the bot sent. Every
string is escaped (payloads carry provider text); the page is one file with its style inline, and its
Content-Security-Policy allows no script and no request, so opening it reaches no network.

Slack's mrkdwn as drawn here: `*bold*`, `_italic_`, `~strike~`, `` `code` ``, ``` blocks, `>` quotes,
`<url|label>` links, `<#C…>`, `<@U…>`, `<!date^…|fallback>` (the fallback), the three escapes
`&amp;` `&lt;` `&gt;`, and the emoji codes the bot uses. https://docs.slack.dev/messaging/formatting-message-text
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EMOJI = {
    "alarm_clock": "⏰",
    "arrow_forward": "▶️",
    "bar_chart": "📊",
    "bell": "🔔",
    "black_square_for_stop": "⏹️",
    "bust_in_silhouette": "👤",
    "calendar": "📆",
    "crescent_moon": "🌙",
    "double_vertical_bar": "⏸️",
    "eyes": "👀",
    "grey_question": "❔",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "large_green_circle": "🟢",
    "large_yellow_circle": "🟡",
    "no_bell": "🔕",
    "red_circle": "🔴",
    "scroll": "📜",
    "stopwatch": "⏱️",
    "test_tube": "🧪",
    "turtle": "🐢",
    "warning": "⚠️",
    "white_check_mark": "✅",
    "white_circle": "⚪",
    "x": "❌",
}

_SPECIAL = re.compile(r"<([^<>\n]*)>")
_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])")
_EMOJI = re.compile(r":([a-z0-9_+-]+):")
_HOLE = re.compile(r"\x00(\d+)\x00")
_LINK = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)


def _text(value: object) -> str:
    """A payload string shown as Slack shows it (its three escapes undone), escaped for HTML."""
    shown = str(value).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return html.escape(shown, quote=True)


def _attr(value: object) -> str:
    """A payload string in an HTML attribute: escaped as is (Slack shows plain text literally)."""
    return html.escape(str(value), quote=True)


def _emoji(escaped: str) -> str:
    def one(match: re.Match[str]) -> str:
        char = EMOJI.get(match.group(1))
        return f'<span class="emoji" title=":{match.group(1)}:">{char}</span>' if char else match.group()

    return _EMOJI.sub(one, escaped)


@dataclass
class Names:
    """Display names for ids: channels (`C…` -> `jobs`) and people (`U…` -> `you`)."""

    channels: Mapping[str, str] = field(default_factory=dict)
    users: Mapping[str, str] = field(default_factory=dict)

    def channel(self, channel: str) -> str:
        return self.channels.get(channel, channel)

    def user(self, user: str) -> str:
        return self.users.get(user, user)


class Mrkdwn:
    """Slack's mrkdwn to HTML (see the module's docstring for what is drawn)."""

    def __init__(self, names: Names) -> None:
        self.names = names

    def __call__(self, text: str) -> str:
        text = str(text).replace("\x00", "")
        parts = text.split("```")
        out = []
        for i, part in enumerate(parts):
            if i % 2 == 1 and i < len(parts) - 1:  # between two fences: a code block
                out.append(f'<pre class="code">{_text(part.strip(chr(10)))}</pre>')
            else:
                out.append(self._lines(part if i % 2 == 0 else "```" + part))
        return "".join(out)

    def _lines(self, text: str) -> str:
        html_lines: list[str] = []
        quote: list[str] = []
        for line in text.split("\n"):
            if line.startswith((">", "&gt;")):
                quote.append(self.inline(line.removeprefix(">").removeprefix("&gt;").removeprefix(" ")))
                continue
            if quote:
                html_lines.append(f"<blockquote>{'<br>'.join(quote)}</blockquote>")
                quote = []
            html_lines.append(self.inline(line) + "<br>")
        if quote:
            html_lines.append(f"<blockquote>{'<br>'.join(quote)}</blockquote>")
        joined = "".join(html_lines)
        return joined.removesuffix("<br>")

    def inline(self, text: str) -> str:
        """One line: links, mentions and dates, code, bold, italic, strike, emoji; the rest escaped."""
        holes: list[str] = []

        def hole(markup: str) -> str:
            holes.append(markup)
            return f"\x00{len(holes) - 1}\x00"

        text = _SPECIAL.sub(lambda m: hole(self._special(m.group(1))), text)
        text = _CODE.sub(lambda m: hole(f"<code>{_text(m.group(1))}</code>"), text)
        shown = _text(text)
        shown = _BOLD.sub(r"<b>\1</b>", shown)
        shown = _ITALIC.sub(r"<i>\1</i>", shown)
        shown = _STRIKE.sub(r"<s>\1</s>", shown)
        shown = _emoji(shown)
        while _HOLE.search(shown):
            shown = _HOLE.sub(lambda m: holes[int(m.group(1))], shown)
        return shown

    def _special(self, inner: str) -> str:
        """`<…>`: a date, a mention, a channel or a link; anything else is shown as typed."""
        target, _, label = inner.partition("|")
        if target.startswith("!date^"):
            return f"<time>{_text(label or target)}</time>"
        if target.startswith("!"):
            name = label or target[1:].split("^")[0]
            return f'<span class="mention">@{_text(name)}</span>'
        if target.startswith("#"):
            return f'<span class="mention">#{_text(label or self.names.channel(target[1:]))}</span>'
        if target.startswith("@"):
            return f'<span class="mention">@{_text(label or self.names.user(target[1:]))}</span>'
        if _LINK.match(target):
            return f'<a href="{_text(target)}" rel="noopener noreferrer">{_text(label or target)}</a>'
        return _text(f"<{inner}>")


class Blocks:
    """Block Kit to HTML: section (text, fields, accessory), context, actions, header, divider."""

    def __init__(self, names: Names) -> None:
        self.mrkdwn = Mrkdwn(names)

    def text(self, obj: Any) -> str:
        """A text object: mrkdwn drawn, plain_text escaped (emoji codes shown, as Slack does)."""
        if not isinstance(obj, dict):
            return ""
        if obj.get("type") == "mrkdwn":
            return self.mrkdwn(str(obj.get("text", "")))
        return _emoji(html.escape(str(obj.get("text", "")), quote=True))

    def message(self, payload: Mapping[str, Any]) -> str:
        """A message's blocks, or its text when it has none."""
        blocks = payload.get("blocks") or []
        if not blocks:
            return f'<div class="section">{self.mrkdwn(str(payload.get("text", "")))}</div>'
        return "".join(self.block(b) for b in blocks if isinstance(b, dict))

    def block(self, block: Mapping[str, Any]) -> str:
        kind = block.get("type")
        if kind == "section":
            parts = [f'<div class="text">{self.text(block.get("text"))}</div>'] if block.get("text") else []
            fields = block.get("fields") or []
            if fields:
                cells = "".join(f'<div class="field">{self.text(f)}</div>' for f in fields)
                parts.append(f'<div class="fields">{cells}</div>')
            accessory = block.get("accessory")
            if isinstance(accessory, dict):
                parts.append(f'<div class="accessory">{self.element(accessory)}</div>')
            return f'<div class="section">{"".join(parts)}</div>'
        if kind == "context":
            items = "".join(
                f'<span class="item">{self._context_element(e)}</span>'
                for e in block.get("elements") or []
                if isinstance(e, dict)
            )
            return f'<div class="context">{items}</div>'
        if kind == "actions":
            buttons = "".join(self.element(e) for e in block.get("elements") or [] if isinstance(e, dict))
            return f'<div class="actions">{buttons}</div>'
        if kind == "header":
            return f'<div class="header">{self.text(block.get("text"))}</div>'
        if kind == "divider":
            return "<hr>"
        return f'<div class="unsupported">[{_attr(kind)} block]</div>'

    def _context_element(self, element: Mapping[str, Any]) -> str:
        """Text, or an image's alt text (an image would be fetched: the page fetches nothing)."""
        return _attr(element.get("alt_text", "")) if element.get("type") == "image" else self.text(element)

    def element(self, element: Mapping[str, Any]) -> str:
        """A button: its label; its confirmation dialog (title, text, choices) as its hover text; a
        link button shows where it leads. Other elements: their type."""
        if element.get("type") != "button":
            return f'<span class="unsupported">[{_attr(element.get("type"))}]</span>'
        label = self.text(element.get("text"))
        style = element.get("style") if element.get("style") in ("primary", "danger") else ""
        hover = ""
        confirm = element.get("confirm")
        if isinstance(confirm, dict):
            words = [str((confirm.get(k) or {}).get("text", "")) for k in ("title", "text", "confirm", "deny")]
            hover = f"{words[0]}: {words[1]} [{words[2]}] [{words[3]}]"
        url = str(element.get("url") or "")
        if url:
            hover = hover or f"Opens {url}"
            if _LINK.match(url):
                return (
                    f'<a class="button {style}" href="{_attr(url)}" title="{_attr(hover)}" '
                    f'rel="noopener noreferrer">{label}</a>'
                )
        title = f' title="{_attr(hover)}"' if hover else ""
        confirm_mark = ' data-confirm="yes"' if isinstance(confirm, dict) else ""
        return f'<button type="button" class="button {style}"{title}{confirm_mark}>{label}</button>'


def _time(ts: object) -> str:
    try:
        return datetime.fromtimestamp(float(str(ts)), UTC).strftime("%H:%M")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


@dataclass
class _Conversation:
    """One channel or DM: its timeline (posts, broadcast replies, commands, ephemeral answers) and its
    threads."""

    channel: str
    timeline: list[dict[str, Any]] = field(default_factory=list)
    threads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    parents: dict[str, dict[str, Any]] = field(default_factory=dict)


class Page:
    """The whole page from a FakeSlack log."""

    def __init__(self, names: Names, *, bot: str = "jobwatch", title: str = "jobwatch demo") -> None:
        self.names = names
        self.blocks = Blocks(names)
        self.bot = bot
        self.title = title

    def render(self, log: Sequence[Mapping[str, Any]]) -> str:
        conversations: dict[str, _Conversation] = {}
        edited: set[tuple[str, str]] = set()
        homes: dict[str, Mapping[str, Any]] = {}
        last_channel = ""
        for entry in log:
            kind = entry.get("kind")
            if kind == "post":
                message = entry["message"]
                channel = str(message["channel"])
                talk = conversations.setdefault(channel, _Conversation(channel))
                thread = message.get("thread_ts")
                if thread:
                    talk.threads.setdefault(str(thread), []).append(message)
                    if message.get("reply_broadcast"):
                        talk.timeline.append({"kind": "broadcast", "message": message})
                else:
                    talk.parents[str(message["ts"])] = message
                    talk.timeline.append({"kind": "post", "message": message})
            elif kind == "update":
                edited.add((str(entry["channel"]), str(entry["ts"])))
            elif kind == "command":
                last_channel = str(entry.get("channel", ""))
                conversations.setdefault(last_channel, _Conversation(last_channel)).timeline.append(dict(entry))
            elif kind == "ephemeral":
                conversations.setdefault(last_channel, _Conversation(last_channel)).timeline.append(dict(entry))
            elif kind == "view":
                homes[str(entry.get("user_id", ""))] = entry.get("view") or {}
        channels = [c for c in conversations.values() if not c.channel.startswith("D")]
        dms = [c for c in conversations.values() if c.channel.startswith("D")]
        nav = "".join(f'<a href="#c-{_attr(c.channel)}"># {_attr(self.names.channel(c.channel))}</a>' for c in channels)
        if dms:
            nav += "<h4>Direct messages</h4>" + "".join(
                f'<a href="#c-{_attr(c.channel)}">{_attr(self.bot)}</a>' for c in dms
            )
        if homes:
            nav += "<h4>Apps</h4>" + "".join(f'<a href="#home-{_attr(u)}">{_attr(self.bot)} · Home</a>' for u in homes)
        main = "".join(self._conversation(c, edited) for c in [*channels, *dms])
        main += "".join(self._home(user, view) for user, view in homes.items())
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_attr(self.title)}</title><style>{CSS}</style></head><body>"
            f'<nav class="side"><h3>{_attr(self.title)}</h3><h4>Channels</h4>{nav}</nav>'
            f"<main>{main}</main></body></html>\n"
        )

    def _conversation(self, talk: _Conversation, edited: set[tuple[str, str]]) -> str:
        dm = talk.channel.startswith("D")
        heading = (
            f"{_attr(self.bot)} <small>direct messages</small>"
            if dm
            else f"# {_attr(self.names.channel(talk.channel))}"
        )
        items = []
        for item in talk.timeline:
            kind = item["kind"]
            if kind == "post":
                message = item["message"]
                replies = talk.threads.get(str(message["ts"]), [])
                items.append(self._message(message, edited, replies=replies))
            elif kind == "broadcast":
                message = item["message"]
                parent = talk.parents.get(str(message.get("thread_ts")))
                about = self.blocks.mrkdwn(str(parent.get("text", "")).split("\n")[0]) if parent else ""
                items.append(self._message(message, edited, note=f"replied to a thread: {about}", extra="broadcast"))
            elif kind == "command":
                user = self.names.user(str(item.get("user", "")))
                items.append(
                    f'<article class="msg person"><div class="avatar person">{_attr(user[:1].upper())}</div>'
                    f'<div class="body"><div class="meta"><b>{_attr(user)}</b></div>'
                    f'<div class="typed">{_attr(item.get("text", ""))}</div></div></article>'
                )
            elif kind == "ephemeral":
                payload = item.get("payload") or {}
                items.append(self._message(payload, edited, note="Only visible to you", extra="ephemeral"))
        return (
            f'<section class="conversation" id="c-{_attr(talk.channel)}"><h2>{heading}</h2>{"".join(items)}</section>'
        )

    def _message(
        self,
        message: Mapping[str, Any],
        edited: set[tuple[str, str]],
        *,
        replies: Sequence[Mapping[str, Any]] = (),
        note: str = "",
        extra: str = "",
    ) -> str:
        ts = str(message.get("ts", ""))
        was_edited = (str(message.get("channel", "")), ts) in edited
        meta = f'<b>{_attr(self.bot)}</b><span class="app">APP</span><span class="time">{_attr(_time(ts))}</span>'
        lead = f'<div class="note">{note}</div>' if note else ""
        body = self.blocks.message(message)
        mark = '<span class="edited">(edited)</span>' if was_edited else ""
        thread = ""
        if replies:
            shown = "".join(
                self._message(
                    r, edited, note="also sent to the channel" if r.get("reply_broadcast") else "", extra="reply"
                )
                for r in replies
            )
            count = f"{len(replies)} repl{'y' if len(replies) == 1 else 'ies'}"
            thread = f'<div class="thread"><div class="thread-head">Thread · {count}</div>{shown}</div>'
        ident = f' id="m-{_attr(message.get("channel", ""))}-{_attr(ts)}"' if ts else ""
        edited_attr = ' data-edited="yes"' if was_edited else ""
        return (
            f'<article class="msg {extra}"{ident}{edited_attr}><div class="avatar bot">jw</div>'
            f'<div class="body">{lead}<div class="meta">{meta}</div>{body}{mark}{thread}</div></article>'
        )

    def _home(self, user: str, view: Mapping[str, Any]) -> str:
        blocks = "".join(self.blocks.block(b) for b in view.get("blocks") or [] if isinstance(b, dict))
        who = _attr(self.names.user(user))
        return (
            f'<section class="conversation home" id="home-{_attr(user)}">'
            f"<h2>{_attr(self.bot)} <small>Home, as {who} see it</small></h2>"
            f'<div class="view">{blocks}</div></section>'
        )


def render_page(log: Sequence[Mapping[str, Any]], names: Names | None = None, *, title: str = "jobwatch demo") -> str:
    """The page for a FakeSlack `log`."""
    return Page(names or Names(), title=title).render(log)


CSS = """
*{box-sizing:border-box}
body{margin:0;display:flex;font:15px/1.46 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",
sans-serif,"Noto Color Emoji","Apple Color Emoji";color:#1d1c1d;background:#fff}
nav.side{position:sticky;top:0;align-self:flex-start;height:100vh;width:220px;flex:none;background:#3f0e40;
color:#cfc3cf;padding:16px 12px;overflow:auto}
nav.side h3{color:#fff;margin:0 0 12px;font-size:17px}
nav.side h4{margin:14px 0 4px;font-size:13px;font-weight:600;color:#cfc3cf}
nav.side a{display:block;color:#cfc3cf;text-decoration:none;padding:2px 8px;border-radius:6px}
nav.side a:hover{background:#350d36;color:#fff}
main{flex:1;min-width:0;max-width:900px}
section.conversation{border-bottom:1px solid #ddd;padding-bottom:12px}
section.conversation>h2{position:sticky;top:0;z-index:1;margin:0;padding:12px 20px;font-size:18px;background:#fff;
border-bottom:1px solid #ddd}
h2 small{font-weight:400;color:#616061;font-size:14px}
article.msg{display:flex;gap:8px;padding:8px 20px}
article.msg:hover{background:#f8f8f8}
article.reply{padding:6px 0}
.avatar{flex:none;width:36px;height:36px;border-radius:6px;display:flex;align-items:center;justify-content:center;
font-weight:700;color:#fff;font-size:14px}
.avatar.bot{background:#2eb67d}.avatar.person{background:#1264a3}
article.reply .avatar{width:28px;height:28px;font-size:12px}
.body{min-width:0;flex:1}
.meta b{font-weight:900}
.meta .app{font-size:10px;font-weight:700;color:#616061;background:#e8e8e8;border-radius:3px;padding:1px 4px;
margin-left:6px;vertical-align:2px}
.meta .time{color:#616061;font-size:12px;margin-left:8px}
.note{color:#616061;font-size:13px}
article.ephemeral .note::before{content:"👁 "}
article.ephemeral{background:#f4f9fc}
article.broadcast .note{font-size:13px}
.typed{font-family:SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:14px}
.section{margin:2px 0}
.fields{display:grid;grid-template-columns:1fr 1fr;gap:4px 16px;margin:4px 0}
.accessory{margin:4px 0}
.context{color:#616061;font-size:12.5px;margin:4px 0;display:flex;flex-wrap:wrap;gap:2px 10px}
.header{font-size:18px;font-weight:900;margin:8px 0}
hr{border:0;border-top:1px solid #ddd;margin:10px 0}
.actions{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0 4px}
.button{font:inherit;font-size:13px;font-weight:700;color:#1d1c1d;background:#fff;border:1px solid #bbb;
border-radius:4px;padding:3px 12px;text-decoration:none;cursor:default}
a.button{cursor:pointer}
.button.primary{background:#007a5a;color:#fff;border-color:#007a5a}
.button.danger{color:#e01e5a;border-color:#e01e5a}
.edited{color:#616061;font-size:12px}
.thread{border-left:3px solid #ddd;margin:8px 0 0;padding-left:12px}
.thread-head{color:#1264a3;font-weight:700;font-size:13px}
blockquote{margin:2px 0;padding-left:10px;border-left:4px solid #ddd}
code{font-family:SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12px;color:#e01e5a;
background:#f6f6f6;border:1px solid #e8e8e8;border-radius:3px;padding:0 3px}
pre.code{font:12px/1.5 SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;background:#f8f8f8;
border:1px solid #e8e8e8;border-radius:4px;padding:8px;white-space:pre-wrap;word-break:break-word;margin:4px 0}
.mention{color:#1264a3;background:#e8f5fa;border-radius:3px;padding:0 2px}
a{color:#1264a3}
.unsupported{color:#616061;font-style:italic}
.home .view{padding:8px 20px}
"""
