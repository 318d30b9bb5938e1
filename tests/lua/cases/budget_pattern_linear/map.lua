-- patterns whose cost is linear in the text stay cheap on 40 000 bytes
-- without separators, with a budget of 10 million (runs of 40 000)
function to_peer(msg)
  local t = msg.text
  local n = 0
  for line in t:gmatch("[^\n]+") do n = n + #line end
  msg.line_bytes = n
  msg.words = select(2, t:gsub("%S+", "w"))
  msg.digits = t:match("(%d+)$") or t:match("%d+")
  msg.first_digit = t:find("%d")
  msg.key, msg.value = ("name=" .. t):match("^(%w+)=(.*)")
  msg.value = #msg.value
  msg.long_literal = t:find(("x"):rep(100), 1, true) and true or false
  msg.long_pattern = t:find(("%a"):rep(100)) and true or false
  return msg
end
