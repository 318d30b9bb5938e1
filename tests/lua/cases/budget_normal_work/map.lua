-- ordinary use of the charged functions stays far inside the budget
function to_peer(msg)
  local trimmed = msg.text:match("^%s*(.-)%s*$")
  msg.trimmed_len = #trimmed
  msg.words = select(2, msg.text:gsub("%S+", ""))
  local n = 0
  for _ in msg.text:gmatch("%a+") do n = n + 1 end
  msg.gmatch_words = n
  msg.found = msg.text:find("lorem", 1, true)
  msg.line = string.rep("-", 40)
  local parts = {}
  for i = 1, 1000 do parts[i] = tostring(i) end
  msg.joined_len = #table.concat(parts, ",")
  table.move(parts, 1, 1000, 2)
  table.insert(parts, 1, "x")
  table.remove(parts, 1)
  msg.unpacked = select("#", table.unpack(parts, 1, 200))
  msg.bytes = select("#", msg.text:byte(1, 100))
  msg.utf8_len = utf8.len("één")
  local ok, err = pcall(error, { code = 7 })
  msg.pcall_table = type(err) == "table" and err.code
  local ok2, v = xpcall(function() error("inner", 0) end, function(e) return "handled " .. e end)
  msg.xpcall = v
  return msg
end
