@testable import SwitchboardHTTP
import Testing

struct HTTPHeaderRulesTests {
    @Test func requestAndResponseRulesKeepTheirLists() {
        #expect(!HTTPHeaderRules.forwardsOnRequest("Keep-Alive"))
        #expect(!HTTPHeaderRules.forwardsOnRequest("content-length"))
        #expect(!HTTPHeaderRules.forwardsOnRequest("http.status"))
        #expect(HTTPHeaderRules.forwardsOnRequest("Authorization"))
        #expect(!HTTPHeaderRules.forwardsOnResponse("Authorization"))
        #expect(!HTTPHeaderRules.forwardsOnResponse("X-Correlation-ID"))
        #expect(HTTPHeaderRules.forwardsOnResponse("Content-Type"))
        #expect(HTTPHeaderRules.keepsIncoming("Set-Cookie"))
        #expect(!HTTPHeaderRules.keepsIncoming("Transfer-Encoding"))
    }
}
