"""Value pools for the synthetic CRM exports: names, nicknames, places, streets, domains.

Kept as plain Python data so a reader can see (and extend) exactly what the generator draws from.
"""

from __future__ import annotations

# --- US names -------------------------------------------------------------------------------
# Formal first name -> nicknames seen in real CRMs (the standardizer maps them back).
NICKNAMES: dict[str, list[str]] = {
    "Robert": ["Bob", "Rob", "Bobby"],
    "William": ["Bill", "Will", "Billy"],
    "Richard": ["Rick", "Dick", "Rich"],
    "James": ["Jim", "Jimmy"],
    "John": ["Johnny", "Jack"],
    "Michael": ["Mike", "Mikey"],
    "Elizabeth": ["Liz", "Beth", "Betty"],
    "Margaret": ["Maggie", "Peggy", "Meg"],
    "Katherine": ["Kate", "Katie", "Kathy"],
    "Jennifer": ["Jen", "Jenny"],
    "Christopher": ["Chris"],
    "Thomas": ["Tom", "Tommy"],
    "Joseph": ["Joe", "Joey"],
    "Charles": ["Charlie", "Chuck"],
    "Daniel": ["Dan", "Danny"],
    "Matthew": ["Matt"],
    "Anthony": ["Tony"],
    "Steven": ["Steve"],
    "Andrew": ["Andy", "Drew"],
    "Edward": ["Ed", "Eddie", "Ted"],
    "Patricia": ["Pat", "Patty", "Trish"],
    "Susan": ["Sue", "Susie"],
    "Deborah": ["Deb", "Debbie"],
    "Rebecca": ["Becky"],
    "Jessica": ["Jess"],
    "Samantha": ["Sam"],
    "Alexander": ["Alex"],
    "Benjamin": ["Ben"],
    "Nicholas": ["Nick"],
    "Jonathan": ["Jon"],
    "Timothy": ["Tim"],
    "Kenneth": ["Ken", "Kenny"],
    "Ronald": ["Ron", "Ronnie"],
    "Donald": ["Don"],
    "Gregory": ["Greg"],
    "Raymond": ["Ray"],
    "Lawrence": ["Larry"],
    "Gerald": ["Jerry"],
    "Dorothy": ["Dot", "Dottie"],
    "Victoria": ["Vicky", "Tori"],
    "Christine": ["Chris", "Tina"],
    "Kimberly": ["Kim"],
    "Cynthia": ["Cindy"],
    "Pamela": ["Pam"],
    "Stephanie": ["Steph"],
    "Abigail": ["Abby"],
    "Theodore": ["Ted", "Teddy"],
    "Frederick": ["Fred"],
    "Zachary": ["Zach"],
    "Joshua": ["Josh"],
    "Nathaniel": ["Nate"],
    "Samuel": ["Sam"],
    "Peter": ["Pete"],
    "Douglas": ["Doug"],
    "Leonard": ["Len", "Leo"],
    "Eugene": ["Gene"],
    "Phillip": ["Phil"],
    "Judith": ["Judy"],
    "Barbara": ["Barb"],
    "Sandra": ["Sandy"],
    "Melissa": ["Mel", "Missy"],
    "Alexandra": ["Alex", "Lexi"],
    "Jacqueline": ["Jackie"],
    "Catherine": ["Cathy", "Cat"],
    "Gabriel": ["Gabe"],
    "Vincent": ["Vince"],
    "Walter": ["Walt"],
    "Harold": ["Harry", "Hal"],
    "Albert": ["Al", "Bert"],
    "Frances": ["Fran"],
    "Theresa": ["Terry", "Tess"],
    "Jeffrey": ["Jeff"],
    "Stanley": ["Stan"],
    "Eleanor": ["Ellie", "Nora"],
}

_OTHER_US_FIRST = """
Mary Linda Karen Nancy Lisa Betty Sarah Ashley Emily Donna Michelle Carol Amanda Melanie Laura Sharon
Emma Olivia Ava Sophia Isabella Mia Charlotte Amelia Harper Evelyn Madison Chloe Grace Zoe Lily Hannah
Natalie Addison Aubrey Brooklyn Leah Audrey Claire Anna Ella Scarlett Aria Riley Nora Hazel Violet Stella
Lucy Paisley Savannah Skylar Bella Aaliyah Kaylee Allison Gianna Maya Sadie Ruby Eva Ivy Alice Julia
Rachel Megan Heather Diane Julie Joyce Virginia Kelly Lauren Christina Joan Evelyn Martha Andrea Cheryl
Mark Paul George Brian Kevin Jason Eric Jacob Gary Scott Brandon Frank Justin Jerry Tyler Aaron Jose
Adam Henry Nathan Kyle Noah Ethan Carl Arthur Ryan Roger Juan Keith Jeremy Terry Sean Austin Christian
Jordan Dylan Jesse Bryan Bruce Billy Logan Alan Juan Wayne Ralph Roy Louis Russell Bobby Philip Johnny
Liam Mason Lucas Oliver Elijah Aiden Jackson Sebastian Carter Owen Wyatt Luke Jayden Grayson Levi Isaac
Lincoln Hudson Jaxon Eli Landon Hunter Connor Colton Adrian Cameron Evan Dominic Jace Parker Ian Cooper
Carlos Miguel Luis Diego Marco Rafael Andre Omar Hector Ivan Pedro Sergio Marcus Derek Travis Shawn Chad
""".split()
US_FIRST_NAMES: list[str] = sorted(set(NICKNAMES) | set(_OTHER_US_FIRST))

# Gender of US first names is approximate; it only drives the 性别/gender column.
US_FEMALE = set(
    """
Elizabeth Margaret Katherine Jennifer Patricia Susan Deborah Rebecca Jessica Samantha Dorothy Victoria
Christine Kimberly Cynthia Pamela Stephanie Abigail Judith Barbara Sandra Melissa Alexandra Jacqueline
Catherine Frances Theresa Eleanor
""".split()
) | set(_OTHER_US_FIRST[: _OTHER_US_FIRST.index("Mark")])

US_SURNAMES: list[str] = sorted(
    set(
        """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson
Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis
Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall
Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes
Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard
Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price
Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell
Coleman Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton
Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar
Stevens Murray Ford Castro Marshall Owens Harrison Fernandez McDonald Woods Washington Kennedy Wells
Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez
Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone
Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan
Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart Bradley
Knight Elliott Cunningham Duncan Armstrong Hudson Carroll Lane Riley Andrews Alvarado Ray Delgado Berry
Perkins Hoffman Johnston Matthews Pena Richards Contreras Willis Carpenter Lawrence Sandoval O'Brien
O'Connor McCarthy DeLuca
""".split()
    )
    | {"Van Buren", "St. John"}
)

US_COMMON_NAMES: list[tuple[str, str]] = [
    ("John", "Smith"),
    ("Michael", "Johnson"),
    ("James", "Williams"),
    ("Mary", "Smith"),
    ("David", "Brown"),
    ("Maria", "Garcia"),
    ("Robert", "Jones"),
    ("Jennifer", "Miller"),
]
US_FIRST_NAMES = sorted(set(US_FIRST_NAMES) | {"David", "Maria"})

# crm_names profile: accented names whose unaccented twin a keyboard without accents produces
ACCENTED_FIRST_FEMALE = ["Lucía", "Sofía", "María", "Inés", "Belén", "Mónica", "Verónica", "Raquel", "Ángela", "Julia"]
ACCENTED_FIRST_MALE = ["José", "Andrés", "Ramón", "Joaquín", "Martín", "Rubén", "Iván", "Héctor", "Tomás", "Óscar"]
ACCENTED_SURNAMES = [
    "Gutiérrez",
    "Chávez",
    "Núñez",
    "Muñoz",
    "Pérez",
    "Hernández",
    "Martínez",
    "Ramírez",
    "García",
    "López",
    "González",
    "Rodríguez",
    "Sánchez",
    "Jiménez",
    "Gómez",
    "Díaz",
    "Fernández",
    "Álvarez",
    "Vázquez",
    "Ibáñez",
]

TITLES_MALE = ["Mr.", "Mr", "Dr.", "Mr"]
TITLES_FEMALE = ["Ms.", "Mrs.", "Ms", "Dr."]

# --- Chinese names --------------------------------------------------------------------------
# Surname -> pinyin with the *surname* reading (单 Shan, 曾 Zeng, 区 Ou ...), never the
# dictionary default that pypinyin would give out of context.
CN_SURNAME_READINGS: dict[str, str] = {
    "单": "shan",
    "曾": "zeng",
    "区": "ou",
    "仇": "qiu",
    "解": "xie",
    "查": "zha",
    "朴": "piao",
    "盖": "ge",
    "乐": "yue",
    "尉迟": "yuchi",
    "万俟": "moqi",
    "种": "chong",
    "员": "yun",
    "缪": "miao",
    "覃": "qin",
    "翟": "zhai",
    "任": "ren",
    "华": "hua",
    "纪": "ji",
    "繁": "po",
    "召": "shao",
    "秘": "bi",
    "过": "guo",
    "沈": "shen",
    "贾": "jia",
    "曲": "qu",
    "长孙": "zhangsun",
    "黑": "he",
    "薄": "bo",
    "柏": "bai",
    "冼": "xian",
    "尉": "yu",
    "宁": "ning",
    "重": "chong",
    "能": "nai",
    "折": "she",
    "那": "na",
    "都": "du",
    "蕃": "pi",
}
# Common (single-character) surnames, roughly by frequency, plus compounds and tricky readings.
CN_SURNAMES: list[str] = list(
    dict.fromkeys(
        list(
            "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭萧田董袁潘于蒋蔡余杜叶程苏魏吕丁"
            "沈姜范傅钟卢汪戴崔陆廖姚方金邱夏谭韦贾邹石熊孟秦阎薛侯雷白龙段郝孔邵史毛常万顾赖武康贺严尹钱施牛洪龚"
            "汤陶黎温莫易樊乔文安殷颜庄章鲁倪庞邢俞翟蓝聂齐向申葛柴伍覃骆关焦柳欧"
        )
        + ["欧阳", "司马", "诸葛", "上官", "东方", "慕容", "令狐", "皇甫", "长孙"]
        + ["单", "曾", "区", "仇", "解", "查", "朴", "盖", "乐", "缪", "任", "华", "纪", "宁", "柏", "冼"]
    )
)

# Given-name characters (≥ 300), male-leaning then female-leaning; gender only biases the draw.
CN_GIVEN_MALE = list(
    dict.fromkeys(
        "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林欣建国峰成志东海亮晨阳杨子轩博文天佑浩然"
        "宇航志强明辉永福德明嘉诚立新家豪俊杰思远振华学东雪冬正阳文斌国庆建军建华卫东红兵兴旺金龙世杰泽宇"
        "睿哲昊天铭轩晟睿皓轩煜城逸凡宏伟耀宗翰墨彬彦瑞麟骏驰锦程鸿运靖宇瀚钧峻熙锐锋毅坤岩松柏桐楷楠"
        "允承显荣晖启恒庆丰达武胜利权贵鸣"
    )
)
CN_GIVEN_FEMALE = list(
    dict.fromkeys(
        "芳娜敏静丽艳娟霞燕玲婷雪慧莹琳晶颖倩洁佳蕾琪萍红梅兰凤秀英华玉珍月桂春丹青彤欣怡悦璐瑶雯菲婧妍"
        "婉晴诗涵雨萱梓琪可馨思彤紫萱梦瑶欣然语桐若曦嘉怡雅静美玲淑贞惠娴妮姗婕媛嫣岚露霜薇蓉荷莲菊"
        "翠珊瑾璇瑜琬琰瑛韵笑蝶燕舒心宁安乐晓曼蔓莎茜萌蓓苗彩云霏霓翎羽绮纨素锦绣秋冬夏"
        "爱宝贝冰晨婵嫦黛娥芬馥歌虹环佩卉姬嘉娇洁静菁君可岚莉丽怜琏露曼眉玫梦米敏娜凝妍琦琴清琼秋蓉融"
    )
)
CN_GIVEN_OTHER = list(
    dict.fromkeys(
        "一二三中新民生光明正义仁智信礼孝忠勤俭泽润涵沛源江河湖海山川石田禾苗森林木火土金银铜铁"
        "春夏秋冬东南西北朝晖晓晨昕昱昌晋景普智慧聪颖睿思远行知达通永长久安康福寿喜庆祥瑞吉"
    )
)
CN_GIVEN_CHARS: list[str] = list(dict.fromkeys(CN_GIVEN_MALE + CN_GIVEN_FEMALE + CN_GIVEN_OTHER))

CN_COMMON_NAMES: list[str] = ["张伟", "王芳", "李娜", "刘洋", "王静", "李强", "张敏", "王磊", "陈静", "刘杰"]

# --- Places ---------------------------------------------------------------------------------
# (province, city, English city, English province, postcode prefix, districts, streets, area code)
CN_PLACES: list[tuple] = [
    (
        "北京市",
        "北京市",
        "Beijing",
        "Beijing",
        "100",
        ["海淀区", "朝阳区", "东城区", "西城区", "丰台区"],
        ["中关村大街", "学院路", "建国路", "长安街", "知春路", "北四环西路"],
        "010",
    ),
    (
        "上海市",
        "上海市",
        "Shanghai",
        "Shanghai",
        "200",
        ["浦东新区", "徐汇区", "静安区", "黄浦区", "闵行区"],
        ["南京西路", "淮海中路", "世纪大道", "漕溪北路", "张江路"],
        "021",
    ),
    (
        "广东省",
        "广州市",
        "Guangzhou",
        "Guangdong",
        "510",
        ["天河区", "越秀区", "海珠区", "番禺区", "白云区"],
        ["天河路", "中山大道", "环市东路", "江南大道", "体育西路"],
        "020",
    ),
    (
        "广东省",
        "深圳市",
        "Shenzhen",
        "Guangdong",
        "518",
        ["南山区", "福田区", "罗湖区", "宝安区", "龙岗区"],
        ["深南大道", "科技园路", "华强北路", "滨海大道", "宝安大道"],
        "0755",
    ),
    (
        "浙江省",
        "杭州市",
        "Hangzhou",
        "Zhejiang",
        "310",
        ["西湖区", "上城区", "拱墅区", "滨江区", "余杭区"],
        ["文三路", "延安路", "滨盛路", "天目山路", "文一西路"],
        "0571",
    ),
    (
        "江苏省",
        "南京市",
        "Nanjing",
        "Jiangsu",
        "210",
        ["玄武区", "鼓楼区", "秦淮区", "建邺区", "江宁区"],
        ["中山路", "珠江路", "汉中路", "江东中路", "双龙大道"],
        "025",
    ),
    (
        "四川省",
        "成都市",
        "Chengdu",
        "Sichuan",
        "610",
        ["武侯区", "锦江区", "青羊区", "金牛区", "成华区"],
        ["人民南路", "天府大道", "春熙路", "蜀都大道", "科华北路"],
        "028",
    ),
    (
        "湖北省",
        "武汉市",
        "Wuhan",
        "Hubei",
        "430",
        ["武昌区", "洪山区", "江汉区", "汉阳区", "江岸区"],
        ["珞喻路", "中南路", "解放大道", "汉阳大道", "武珞路"],
        "027",
    ),
    (
        "重庆市",
        "重庆市",
        "Chongqing",
        "Chongqing",
        "400",
        ["渝中区", "江北区", "南岸区", "沙坪坝区", "九龙坡区"],
        ["解放碑步行街", "观音桥步行街", "南坪正街", "三峡广场路", "杨家坪正街"],
        "023",
    ),
    (
        "陕西省",
        "西安市",
        "Xi'an",
        "Shaanxi",
        "710",
        ["雁塔区", "碑林区", "莲湖区", "新城区", "未央区"],
        ["长安南路", "小寨东路", "高新路", "东大街", "未央路"],
        "029",
    ),
    (
        "福建省",
        "厦门市",
        "Xiamen",
        "Fujian",
        "361",
        ["思明区", "湖里区", "集美区", "海沧区"],
        ["鹭江道", "厦禾路", "湖滨南路", "嘉禾路"],
        "0592",
    ),
    (
        "湖南省",
        "长沙市",
        "Changsha",
        "Hunan",
        "410",
        ["岳麓区", "芙蓉区", "天心区", "开福区", "雨花区"],
        ["五一大道", "芙蓉中路", "麓山南路", "韶山北路"],
        "0731",
    ),
    (
        "山东省",
        "青岛市",
        "Qingdao",
        "Shandong",
        "266",
        ["市南区", "市北区", "崂山区", "黄岛区"],
        ["香港中路", "延安三路", "辽阳西路", "东海西路"],
        "0532",
    ),
    (
        "天津市",
        "天津市",
        "Tianjin",
        "Tianjin",
        "300",
        ["和平区", "南开区", "河西区", "河东区"],
        ["南京路", "卫津路", "友谊路", "解放北路"],
        "022",
    ),
]

# (city, state, ZIP prefix list, area codes)
US_PLACES: list[tuple] = [
    ("San Francisco", "CA", ["941"], ["415", "628"]),
    ("Los Angeles", "CA", ["900", "901"], ["213", "310", "323"]),
    ("San Jose", "CA", ["951"], ["408", "669"]),
    ("Seattle", "WA", ["981"], ["206"]),
    ("New York", "NY", ["100", "101"], ["212", "646", "917"]),
    ("Brooklyn", "NY", ["112"], ["718", "347"]),
    ("Chicago", "IL", ["606"], ["312", "773"]),
    ("Springfield", "IL", ["627"], ["217"]),
    ("Houston", "TX", ["770"], ["713", "832"]),
    ("Austin", "TX", ["787"], ["512", "737"]),
    ("Boston", "MA", ["021"], ["617", "857"]),
    ("Miami", "FL", ["331"], ["305", "786"]),
    ("Atlanta", "GA", ["303"], ["404", "470"]),
    ("Denver", "CO", ["802"], ["303", "720"]),
    ("Phoenix", "AZ", ["850"], ["602", "480"]),
    ("Philadelphia", "PA", ["191"], ["215", "267"]),
    ("Portland", "OR", ["972"], ["503", "971"]),
    ("Minneapolis", "MN", ["554"], ["612"]),
    ("Detroit", "MI", ["482"], ["313"]),
    ("Nashville", "TN", ["372"], ["615"]),
]
US_STATE_NAMES = {
    "CA": "California",
    "WA": "Washington",
    "NY": "New York",
    "IL": "Illinois",
    "TX": "Texas",
    "MA": "Massachusetts",
    "FL": "Florida",
    "GA": "Georgia",
    "CO": "Colorado",
    "AZ": "Arizona",
    "PA": "Pennsylvania",
    "OR": "Oregon",
    "MN": "Minnesota",
    "MI": "Michigan",
    "TN": "Tennessee",
}

US_STREET_NAMES: list[str] = """
Main Oak Pine Maple Cedar Elm Washington Lake Hill Park Walnut Sunset Lincoln Jackson Church Highland
Mill River Spring Ridge Forest Chestnut Madison Franklin Jefferson Adams Willow Meadow Cherry Valley
Market Mission Broadway Union Center Grant Dogwood Birch Sycamore Magnolia Laurel Hickory Poplar Ash
""".split()
# Suffix -> variants written by different systems.
US_STREET_SUFFIXES: dict[str, list[str]] = {
    "Street": ["Street", "St", "St."],
    "Avenue": ["Avenue", "Ave", "Ave."],
    "Road": ["Road", "Rd", "Rd."],
    "Boulevard": ["Boulevard", "Blvd"],
    "Drive": ["Drive", "Dr", "Dr."],
    "Lane": ["Lane", "Ln"],
    "Court": ["Court", "Ct"],
    "Place": ["Place", "Pl"],
}
US_UNIT_FORMS = ["Apt {n}", "Apt. {n}", "#{n}", "Unit {n}", "Suite {n}"]

US_EMAIL_DOMAINS = [
    "gmail.com",
    "gmail.com",
    "gmail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "aol.com",
    "icloud.com",
    "comcast.net",
    "att.net",
]
CN_EMAIL_DOMAINS = ["qq.com", "qq.com", "163.com", "126.com", "sina.com", "gmail.com", "foxmail.com", "139.com"]
EMAIL_DOMAIN_TYPOS: dict[str, list[str]] = {
    "gmail.com": ["gmial.com", "gmai.com", "gmail.co", "gamil.com"],
    "yahoo.com": ["yaho.com", "yahooo.com"],
    "hotmail.com": ["hotmial.com", "hotmai.com"],
    "outlook.com": ["outlok.com"],
    "qq.com": ["qq.con"],
    "163.com": ["163.cm"],
    "126.com": ["126.con"],
    "icloud.com": ["iclod.com"],
}

CN_MOBILE_PREFIXES = [
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "176",
    "177",
    "180",
    "181",
    "182",
    "185",
    "186",
    "187",
    "188",
    "189",
    "198",
    "199",
]

COMPANIES_EN = [
    "Acme Corp",
    "Globex LLC",
    "Initech",
    "Umbrella Inc.",
    "Stark Industries",
    "Wayne Enterprises",
    "Hooli",
    "Pied Piper",
    "Vandelay Industries",
    "Soylent Co.",
    "Cyberdyne Systems",
    "Wonka Industries",
    "Massive Dynamic",
    "Tyrell Corp",
    "Oscorp",
    "Aperture Science",
    "Bluth Company",
    "Dunder Mifflin",
]
COMPANIES_CN = [
    "华为技术有限公司",
    "腾讯科技",
    "阿里巴巴集团",
    "小米科技",
    "比亚迪股份",
    "京东集团",
    "美团",
    "网易",
    "百度在线",
    "中国平安",
    "招商银行",
    "海尔集团",
    "格力电器",
    "联想集团",
]
