local oke = require("oke")
function to_peer(msg, ctx)
  oke.set(msg, "consumers.nl-test-admin.additionalTimeInMin", 10) -- makes the list and entry
  oke.set(msg, "name.0.value", "Nieuw")                           -- replaces in a list
  oke.set(msg, "name.1", { language = "en-GB", value = "New" })   -- appends at the end
  oke.set(msg, "a.b.c", 1)                                        -- makes objects
  oke.set(msg, "codes.codeType=systemId.code", "X1")              -- makes a list entry
  oke.set(msg, "gone", nil)                                       -- nil removes
  oke.set(msg, "also_gone", oke.remove)                           -- and so does oke.remove
end
