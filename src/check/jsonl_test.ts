import assert from "node:assert/strict";
import { HistoryError, type HistoryEvent } from "./history.ts";
import { formatJsonLinesHistory, parseJsonLinesHistory } from "./jsonl.ts";

Deno.test("JSON-lines histories round-trip through format and parse", () => {
  const events: HistoryEvent[] = [
    { process: 1, type: "invoke", f: "write", key: "flags/a", value: 3, time: 1.5 },
    { process: "client-2", type: "invoke", f: "cas", key: "flags/a", value: [3, 4], time: 2 },
    { process: 1, type: "ok", f: "write", key: "flags/a", value: 3, time: 2 },
    { process: "client-2", type: "info", f: "cas", key: "flags/a", time: 9 },
  ];
  const text = formatJsonLinesHistory(events);
  assert.equal(text.split("\n").length, 5);
  assert.deepEqual(parseJsonLinesHistory(text + "\n\n"), events);
});

Deno.test("JSON-lines errors name the line and the field", () => {
  const cases: [string, RegExp][] = [
    ['{"process":1,"type":"invoke","f":"read"}\nnot json', /line 2/],
    ["[1, 2]", /line 1: want a JSON object/],
    ['{"type":"invoke","f":"read"}', /"process" must be a string or number/],
    ['{"process":1,"type":"done","f":"read"}', /"type" must be one of invoke, ok, fail, info/],
    ['{"process":1,"type":"ok","f":""}', /"f" must be a non-empty string/],
    ['{"process":1,"type":"ok","f":"read","key":7}', /"key" must be a string/],
    ['{"process":1,"type":"ok","f":"read","time":"noon"}', /"time" must be a finite number/],
  ];
  for (const [text, message] of cases) {
    assert.throws(
      () => parseJsonLinesHistory(text),
      (error: unknown) => error instanceof HistoryError && message.test(error.message),
      text,
    );
  }
});
