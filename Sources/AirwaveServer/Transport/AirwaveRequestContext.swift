import Hummingbird
import NIOCore

/// The request context of every HTTP route: Hummingbird's core storage and the NIO channel.
struct AirwaveRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
