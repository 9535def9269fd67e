// The chat page at "/": one self-contained file (no build step, no CDN).
#include "serve/server.h"

namespace solar::serve {

const char* const kChatPage = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>solar chat</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
</head><body><p>placeholder</p></body></html>
)HTML";

}  // namespace solar::serve
