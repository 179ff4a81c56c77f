package demo

// Strings is the text a demo answers with. The zh set is the tutorial's,
// byte for byte; the item demo's lines were already English there, so both
// sets share them.
type Strings struct {
	echoPrefix string // echo: prefix + message

	chatJoined string // chat: id + chatJoined
	chatLeft   string // chat: id + chatLeft
	chatSaid   string // chat: id + chatSaid + message
	chatReply  [2]string
}

var languages = map[string]Strings{
	"zh": {
		echoPrefix: "小菠萝收到的消息是: ",
		chatJoined: " 进入了聊天室",
		chatLeft:   " 离开了聊天室",
		chatSaid:   " 发送消息:",
		chatReply:  [2]string{"服务端回复", ":你发送的信息是:"},
	},
	"en": {
		echoPrefix: "Message received: ",
		chatJoined: " joined the chat",
		chatLeft:   " left the chat",
		chatSaid:   " says: ",
		chatReply:  [2]string{"Server to ", ": you sent: "},
	},
}

// Echo is the echo demo's reply to msg.
func (s Strings) Echo(msg string) string { return s.echoPrefix + msg }

// ItemCredential is the item demo's first reply line.
func (s Strings) ItemCredential(credential string) string {
	return "cookie or token value is:" + credential
}

// ItemQuery is the item demo's line for a non-empty q.
func (s Strings) ItemQuery(q string) string { return "query param value is:" + q }

// ItemMessage is the item demo's last reply line.
func (s Strings) ItemMessage(msg, itemID string) string {
	return "Message text was: " + msg + ", for item ID: " + itemID
}

// ChatJoined announces that id joined the room.
func (s Strings) ChatJoined(id string) string { return id + s.chatJoined }

// ChatLeft announces that id left the room.
func (s Strings) ChatLeft(id string) string { return id + s.chatLeft }

// ChatSaid is what the room sees when id sends msg.
func (s Strings) ChatSaid(id, msg string) string { return id + s.chatSaid + msg }

// ChatReply is the sender's personal reply to its msg.
func (s Strings) ChatReply(id, msg string) string {
	return s.chatReply[0] + id + s.chatReply[1] + msg
}

// ChatJoinedSuffix and ChatLeftSuffix end every join and leave line; the
// chat page watches for them to refresh its member list.
func (s Strings) ChatJoinedSuffix() string { return s.chatJoined }

// ChatLeftSuffix: see [Strings.ChatJoinedSuffix].
func (s Strings) ChatLeftSuffix() string { return s.chatLeft }
